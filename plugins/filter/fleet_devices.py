# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: fleet_devices
short_description: Normalise a device list for a fleet push
version_added: 0.1.0
author:
  - monoz.link contributors (@monoz-link)
description:
  - >-
    Turns a list of ICCID strings (or integers) and dicts with an C(iccid) key into a list of dicts
    C({iccid: <digits>, <per-device variables>...}), the shape the P(monoz.link.fleet_push#role) role works on.
  - Every ICCID is checked (digits only, 1 to 22 of them) on the controller, so a typo fails before anything is sent;
    the error names the element's index.
  - Used by the P(monoz.link.fleet_push#role) role for O(monoz.link.fleet_push#role:main:fleet_push_devices).
options:
  _input:
    description: ICCID strings or dicts with key C(iccid) plus any per-device variables.
    type: list
    elements: raw
    required: true
"""

EXAMPLES = r"""
- name: Normalise a mixed list
  ansible.builtin.debug:
    msg: "{{ ['8988280666000000001', {'iccid': 8988280666000000002, 'apn': 'iot.b'}] | monoz.link.fleet_devices }}"
  # [{"iccid": "8988280666000000001"}, {"iccid": "8988280666000000002", "apn": "iot.b"}]
"""

RETURN = r"""
_value:
  description: One dict per input element, in input order, with C(iccid) as a string of digits.
  type: list
  elements: dict
"""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.monoz.link.plugins.module_utils._downlink_input import DownlinkInputError, normalise_iccid


def device_record(element, where: str) -> dict:
    """One device as a plain dict with a normalised ``iccid``; raise ``AnsibleFilterError`` naming ``where``."""
    if isinstance(element, Mapping):
        if "iccid" not in element:
            raise AnsibleFilterError(f"{where} has no iccid key: {sorted(str(key) for key in element)}")
        record = dict(element)
        raw = element["iccid"]
    else:
        record = {}
        raw = element
    try:
        record["iccid"] = normalise_iccid(raw, f"{where}: iccid")
    except DownlinkInputError as exc:
        raise AnsibleFilterError(str(exc)) from None
    return record


def fleet_devices(devices) -> list:
    if devices is None:
        return []
    if isinstance(devices, (str, bytes, Mapping)) or not hasattr(devices, "__iter__"):
        raise AnsibleFilterError(f"fleet_devices expects a list, got {type(devices).__name__}")
    return [device_record(element, f"devices[{index}]") for index, element in enumerate(devices)]


class FilterModule:
    def filters(self):
        return {"fleet_devices": fleet_devices}
