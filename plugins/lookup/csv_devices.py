# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: csv_devices
short_description: Read a device list from a CSV file on the controller
version_added: 0.1.0
author:
  - monoz.link contributors (@monoz-link)
description:
  - Reads one or more CSV files with a header row and returns one dict per data row, C(iccid) plus every other column
    as a per-device variable (all values strings, surrounding blanks stripped).
  - The file must have an C(iccid) column; every ICCID is checked (digits only, 1 to 22 of them) and a bad one fails
    the lookup naming the file and line. Blank lines are ignored; a header-only file gives an empty list.
  - Relative paths are searched like M(ansible.builtin.copy) sources, in the role's and play's C(files) directories
    and then the playbook directory.
  - Use it with C(query) (or C(wantlist=true)) to get the list of devices.
  - Used by the P(monoz.link.fleet_push#role) role for O(monoz.link.fleet_push#role:main:fleet_push_devices_csv).
options:
  _terms:
    description: Paths of CSV files; the rows of all of them are returned, in order.
    required: true
    type: list
    elements: str
  delimiter:
    description: Field delimiter.
    type: str
    default: ","
  encoding:
    description: Text encoding of the files; the default also drops a leading byte order mark (as Excel writes).
    type: str
    default: utf-8-sig
"""

EXAMPLES = r"""
- name: Push to the devices listed in devices.csv (columns iccid,apn,interval)
  ansible.builtin.include_role:
    name: monoz.link.fleet_push
  vars:
    fleet_push_devices: "{{ query('monoz.link.csv_devices', 'devices.csv') }}"
    fleet_push_template: apn_config.json.j2
"""

RETURN = r"""
_raw:
  description: One dict per data row, C(iccid) plus the other columns.
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.monoz.link.plugins.plugin_utils._fleet_render import FleetInputError
from ansible_collections.monoz.link.plugins.plugin_utils._fleet_source import iter_csv_devices


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        devices = []
        for term in terms:
            path = self.find_file_in_search_path(variables, "files", term)
            if not path:
                raise AnsibleLookupError(f"CSV device file {term!r} not found")
            try:
                devices.extend(iter_csv_devices(path, self.get_option("delimiter"), self.get_option("encoding")))
            except FleetInputError as exc:
                raise AnsibleLookupError(str(exc)) from None
        return devices
