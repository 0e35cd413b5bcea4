# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: render_each
short_description: Build the per-device downlinks of a fleet push, rendering a template once per device
version_added: 0.1.0
author:
  - monoz.link contributors (@monoz-link)
description:
  - Takes a list of device dicts (C(iccid) plus per-device variables) and returns, for each, the element to pass in
    O(monoz.link.monoz_downlink#module:devices) - C({iccid, payload}) plus C(topic), C(qos), C(format) and C(retain)
    when the device sets them, and C(format=json) when the format rule below chose it.
  - With O(template), the Jinja2 template is rendered once per device, in-process on the controller, with all play
    variables in scope plus C(device) (C(device.iccid), C(device.<column>)). Rendering 10,000 devices is one task,
    not 10,000. The message is the rendered text with surrounding whitespace (such as the template's final newline
    or the blank lines of its comments) removed; everything between is sent byte for byte, never parsed and
    re-serialised, so number spellings like C(1e3), key order and repeated keys reach the device as written.
  - With O(payload), every device gets the same payload. A string is sent exactly as given (not trimmed); a dict or
    list is passed on as it is and serialised to compact JSON by M(monoz.link.monoz_downlink).
  - "Format rule: when neither O(format) nor the device's own C(format) is set, a text message that is a valid JSON
    object or array goes out with format C(json) (checked as JSON, sent unchanged); any other text goes out as
    C(text). Set O(format=json) to require valid JSON of every message."
  - Every downlink is then checked with the same rules as M(monoz.link.monoz_downlink) (ICCID, JSON validity,
    message size, topic) so that a bad device fails here, naming its index and ICCID, before any batch is sent.
  - Used by the P(monoz.link.fleet_push#role) role.
options:
  _terms:
    description: The devices, dicts with key C(iccid) (see the P(monoz.link.fleet_push#role) role).
    required: true
    type: list
    elements: dict
  template:
    description:
      - Path of the Jinja2 template, searched in the C(templates) directories of the role and play, then next to
        the playbook, like M(ansible.builtin.template).
      - Exactly one of O(template) and O(payload).
    type: str
  payload:
    version_added: 0.2.0
    description: The payload for every device, a string or a dict/list (sent as JSON).
    type: raw
  format:
    description: C(json) or C(text) for every device; unset applies the format rule above.
    type: str
    choices: [json, text]
  org_id:
    description: Organisation ID, used only to check the length of the whole MQTT topic.
    type: str
    default: ORG
  topic:
    description: Task-level topic, used to check devices that set none.
    type: str
    default: ""
  qos:
    description: Task-level QoS, used to check devices that set none.
    type: int
    default: 0
"""

EXAMPLES = r"""
- name: One rendered message per device
  ansible.builtin.debug:
    msg: "{{ query('monoz.link.render_each', devices, template='apn_config.json.j2') }}"
"""

RETURN = r"""
_raw:
  description: One dict per device, in input order, ready for O(monoz.link.monoz_downlink#module:devices).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.monoz.link.plugins.plugin_utils._fleet_render import (
    FleetInputError,
    MessageSettings,
    build_downlinks,
    device_dict,
)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        devices = terms[0] if len(terms) == 1 and isinstance(terms[0], list) else terms
        template = self.get_option("template")
        payload = self.get_option("payload")
        if (template is None) == (payload is None):
            raise AnsibleLookupError("render_each needs exactly one of template and payload")
        if template is not None:
            path = self.find_file_in_search_path(variables, "templates", template)
            if not path:
                raise AnsibleLookupError(f"template {template!r} not found")
            template = path
        settings = MessageSettings(
            template=template, payload=payload, format=self.get_option("format"),
            org_id=self.get_option("org_id"), topic=self.get_option("topic"), qos=self.get_option("qos"),
        )
        try:
            devices = [device_dict(index, device) for index, device in enumerate(devices)]
            return build_downlinks(self._templar, settings, devices, variables)
        except FleetInputError as exc:
            raise AnsibleLookupError(str(exc)) from None
