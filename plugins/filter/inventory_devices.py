# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: inventory_devices
short_description: Turn inventory hosts into a device list for a fleet push
version_added: 0.1.0
author:
  - monoz.link contributors (@monoz-link)
description:
  - >-
    For each host name in the input, reads the host's variables from O(hostvars) and returns a device dict
    C({iccid: <monoz_iccid>, <host variables>...}).
  - The ICCID comes from the host variable named by O(iccid_var); a host without it fails the filter, naming the host.
  - Copied are the host's own variables (inventory, C(group_vars), C(host_vars), facts set earlier) plus
    C(inventory_hostname) and C(group_names); Ansible's magic variables (C(groups), C(playbook_dir), ...),
    C(ansible_*) connection variables and C(fleet_push_*) role variables are left out.
  - Used by the P(monoz.link.fleet_push#role) role for O(monoz.link.fleet_push#role:main:fleet_push_inventory_group).
options:
  _input:
    description: Inventory host names, for example C(groups['sensors']).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  iccid_var:
    description: Name of the host variable holding the ICCID.
    type: str
    default: monoz_iccid
"""

EXAMPLES = r"""
- name: Devices of the sensors group
  ansible.builtin.set_fact:
    sensor_devices: "{{ groups['sensors'] | monoz.link.inventory_devices(hostvars) }}"
  # [{"iccid": "8988280666000000001", "inventory_hostname": "sensor-1", "group_names": ["sensors"], "apn": "iot.a"}, ...]
"""

RETURN = r"""
_value:
  description: One dict per host, in input order, with C(iccid) as a string of digits.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.monoz.link.plugins.filter.fleet_devices import device_record

# Magic variables Ansible adds to every host (the same for all of them, and
# some, like groups, as big as the inventory): not device settings.
_MAGIC = frozenset((
    "groups", "omit", "playbook_dir", "inventory_dir", "inventory_file", "inventory_hostname_short",
    "role_names", "role_name", "role_path", "environment", "hostvars",
))
_SKIP_PREFIXES = ("ansible_", "fleet_push_", "__fleet_push_")


def inventory_devices(hosts, hostvars, iccid_var: str = "monoz_iccid") -> list:
    if hosts is None:
        return []
    if isinstance(hosts, str):
        hosts = [hosts]
    devices = []
    for host in hosts:
        # Ansible's hostvars answer an unknown host with an undefined value, not a KeyError.
        if host not in hostvars:
            raise AnsibleFilterError(f"host {host!r} is not in the inventory")
        host_vars = hostvars[host]
        if iccid_var not in host_vars:
            raise AnsibleFilterError(f"host {host!r} has no {iccid_var} variable, so it has no ICCID to push to")
        record = {
            name: host_vars[name]
            for name in host_vars
            if name not in _MAGIC and not name.startswith(_SKIP_PREFIXES)
        }
        record["iccid"] = host_vars[iccid_var]
        record["inventory_hostname"] = host
        devices.append(device_record(record, f"host {host}"))
    return devices


class FilterModule:
    def filters(self):
        return {"inventory_devices": inventory_devices}
