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

import json
import os
import uuid
from collections.abc import Mapping

from ansible.errors import AnsibleError, AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.monoz.link.plugins.module_utils._downlink_input import (
    DownlinkInputError,
    build_downlink,
    normalise_iccid,
)
from ansible_collections.monoz.link.plugins.plugin_utils._compat import trust_as_template

# Per-device settings a device dict may carry that are passed on to the module.
_OVERRIDES = ("topic", "qos", "format", "retain")


def _refuse_constant(name: str):
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) and the API do not.
    raise ValueError(name)


def is_json_container(text: str) -> bool:
    """Whether ``text`` is a valid JSON object or array (the format rule)."""
    if text.lstrip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return False
    return True


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        devices = terms[0] if len(terms) == 1 and isinstance(terms[0], list) else terms
        template = self.get_option("template")
        payload = self.get_option("payload")
        if (template is None) == (payload is None):
            raise AnsibleLookupError("render_each needs exactly one of template and payload")
        fleet_format = self.get_option("format")
        devices = [self._device(index, device) for index, device in enumerate(devices)]
        if template is not None:
            # Surrounding whitespace of a template is layout, not message.
            messages = [text.strip() for text in self._render_all(template, devices, variables or {})]
        else:
            messages = [payload] * len(devices)

        downlinks = []
        for index, (device, message) in enumerate(zip(devices, messages)):
            iccid = device["iccid"]
            overrides = {key: device[key] for key in _OVERRIDES if device.get(key) not in (None, "")}
            fmt = overrides.get("format", fleet_format)
            if fmt is None and isinstance(message, str) and is_json_container(message):
                fmt = overrides["format"] = "json"
            try:
                build_downlink(
                    self.get_option("org_id"), iccid, message, fmt,
                    overrides.get("topic", self.get_option("topic")),
                    overrides.get("qos", self.get_option("qos")), overrides.get("retain"),
                    prefix=f"devices[{index}] (ICCID {iccid}): ",
                )
            except DownlinkInputError as exc:
                raise AnsibleLookupError(str(exc)) from None
            downlinks.append({"iccid": iccid, "payload": message, **overrides})
        return downlinks

    @staticmethod
    def _device(index: int, device) -> dict:
        if not isinstance(device, Mapping) or "iccid" not in device:
            raise AnsibleLookupError(f"devices[{index}] must be a dict with an iccid key")
        device = dict(device)
        try:
            device["iccid"] = normalise_iccid(device["iccid"], f"devices[{index}]: iccid")
        except DownlinkInputError as exc:
            raise AnsibleLookupError(str(exc)) from None
        return device

    def _render_all(self, template: str, devices: list, variables: dict) -> list:
        """Render the template once per device, in one Jinja run over the whole list.

        Rendering through the public Templar API compiles the template on
        every call (~6 ms a device); a single wrapper template that includes
        the user's template in a loop compiles it once (Jinja caches the
        include), so 10,000 devices cost seconds, not a minute.  Every
        device's text starts with a random separator, so the whole output is
        never a Python or JSON literal that the templar could turn into a
        native value: each message comes back as the exact text rendered.
        """
        path = self.find_file_in_search_path(variables, "templates", template)
        if not path:
            raise AnsibleLookupError(f"template {template!r} not found")
        if not devices:
            return []
        # Includes and imports resolve like ansible.builtin.template: next to the
        # template first, then the templates/ directories of the search path.
        searchpath = [os.path.dirname(path)]
        for base in variables.get("ansible_search_path", []):
            searchpath.extend((os.path.join(base, "templates"), base))
        separator = f"\x1e{uuid.uuid4().hex}\x1e"
        context = dict(variables)
        context.update(__fleet_push_devices=devices, __fleet_push_separator=separator)
        templar = self._templar.copy_with_new_env(available_variables=context, searchpath=searchpath)
        wrapper = trust_as_template(
            "{%- for device in __fleet_push_devices -%}"
            "{{ __fleet_push_separator }}"
            "{% include " + json.dumps(os.path.basename(path)) + " %}"
            "{%- endfor -%}"
        )
        try:
            rendered = templar.template(wrapper, escape_backslashes=False)
        except AnsibleError:
            self._find_render_error(templar, path, devices, context)
            raise
        messages = str(rendered).split(separator)
        if len(messages) != len(devices) + 1 or messages[0]:
            raise AnsibleLookupError(
                f"rendering {template} gave {len(messages) - 1} messages for {len(devices)} devices"
            )
        return messages[1:]

    def _find_render_error(self, templar, path: str, devices: list, context: dict) -> None:
        """After a failed bulk render, render one device at a time to name the device that fails."""
        with open(path, encoding="utf-8") as handle:
            source = trust_as_template(handle.read())
        for index, device in enumerate(devices):
            context["device"] = device
            templar.available_variables = context
            try:
                templar.template(source, escape_backslashes=False)
            except AnsibleError as exc:
                raise AnsibleLookupError(
                    f"devices[{index}] (ICCID {device['iccid']}): rendering {os.path.basename(path)} failed: {exc}"
                ) from None
