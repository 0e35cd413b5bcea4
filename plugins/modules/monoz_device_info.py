#!/usr/bin/python
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: monoz_device_info
short_description: Read device and SIM details from Monoz Link
version_added: 0.2.0
description:
  - Reads the details of one device (O(iccid)) or of a fleet (O(devices)) through the Monoz Link
    C(Device/Sim/Detail/{ICCID}) API, among them its name, SIM status, activation and expiry dates, uplink and
    downlink counters and remaining data volume.
  - A fleet is read in parallel over one pooled keep-alive connection set, with an optional rate limit.
  - Every option and every device is validated before the first request, so bad input sends nothing.
  - The endpoint comes from a page the vendor has written but not yet published; its fields and their meaning
    may still change.
author:
  - monoz.link contributors (@monoz-link)
extends_documentation_fragment:
  - monoz.link.connection
  - monoz.link.attributes
  - monoz.link.attributes.READ_ONLY
options:
  iccid:
    description:
      - ICCID of the one device to read, digits only, 1 to 22 of them.
      - Exactly one of O(iccid) and O(devices) is required.
    type: str
  devices:
    description:
      - Many devices to read in one task.
      - Each element is an ICCID string, or a dict with key C(iccid); other keys of a dict are ignored, so the device
        list of M(monoz.link.monoz_downlink), a CSV or an inventory feeds this module unchanged.
      - Results come back in input order in RV(results). An empty list reads nothing.
    type: list
    elements: raw
  concurrency:
    description:
      - Parallel requests for a fleet, over one pooled keep-alive session that holds this many connections.
      - Between 1 and 256.
    type: int
    default: 8
  rate_limit:
    description:
      - Most requests per second to start across the whole fleet, retries included, with no initial burst.
      - V(0) means unlimited.
    type: float
    default: 0
notes:
  - The task fails when any device failed, and still returns every device's result in RV(results).
  - An HTTP 401 stops a fleet at once, since the key is wrong for every device;
    devices not attempted are reported C(failed) with a RV(results[].msg) saying so.
seealso:
  - module: monoz.link.monoz_sim
    description: Enable or disable SIMs.
  - module: monoz.link.monoz_data_info
    description: Read the uplink history.
  - ref: ansible_collections.monoz.link.docsite.user_guide
    description: The collection's user guide (credentials, fleets and the journal, troubleshooting).
"""

EXAMPLES = r"""
- name: Read one device
  monoz.link.monoz_device_info:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    iccid: "8988280666000000001"
  register: info

- name: Warn when its data volume runs low
  ansible.builtin.debug:
    msg: "{{ info.device.name }} has {{ info.device.volume }} left"
  when: info.device.volume < 1000000

- name: Read a fleet with credentials set once
  module_defaults:
    group/monoz.link.monoz:
      org_id: mti
      api_key: "{{ vault_monoz_api_key }}"
  block:
    - name: Read every device of the console's CSV export
      monoz.link.monoz_device_info:
        devices: "{{ query('monoz.link.csv_devices', 'devices.csv') }}"
        concurrency: 32
      register: fleet

    - name: List the devices that never sent an uplink
      ansible.builtin.debug:
        msg: "{{ fleet.results | selectattr('status', 'eq', 'ok') | selectattr('device.message_count', 'eq', 0)
                 | map(attribute='iccid') }}"
"""

RETURN = r"""
device:
  description: The device's details, the API's C(Data) with snake_case keys.
  returned: single mode, success
  type: dict
  contains:
    name:
      description: The device's name.
      type: str
      sample: pump-7
    iccid:
      description: The SIM's ICCID.
      type: str
      sample: "8988280666000000001"
    imei_lock:
      description: Whether the SIM is locked to the IMEI of its device.
      type: bool
      sample: false
    activation_date:
      description: When the SIM was activated.
      type: str
      sample: "2024-02-11T07:26:54.441Z"
    expiry_date:
      description: When the SIM expires.
      type: str
      sample: "2034-02-11T07:26:54.441Z"
    status:
      description: The SIM's status as the API gives it, an integer (the vendor does not document its values).
      type: int
      sample: 1
    message_count:
      description: Successful uplinks (usage covers the last 30 days).
      type: int
      sample: 42
    dl_message_count:
      description: Downlinks Monoz Link sent to the device.
      type: int
      sample: 3
    volume:
      description: The SIM's remaining data volume.
      type: int
      sample: 499000000
    created_date:
      description: When the device was created in Monoz Link.
      type: str
      sample: "2024-02-11T07:26:54.441Z"
    updated_date:
      description: When the device was last updated.
      type: str
      sample: "2024-03-11T04:19:55.579Z"
status_code:
  description: HTTP status of the last attempt.
  returned: single mode, when a response was received
  type: int
  sample: 200
results:
  description: One entry per element of O(devices), in input order.
  returned: fleet mode, after validation
  type: list
  elements: dict
  contains:
    iccid:
      description: The device's ICCID.
      type: str
      returned: always
      sample: "8988280666000000001"
    status:
      description: C(ok) when the details were read, C(failed) when not (or the device was not attempted).
      type: str
      returned: always
      sample: ok
    status_code:
      description: HTTP status of the last attempt; null when no response was received.
      type: int
      returned: always
      sample: 200
    device:
      description: The device's details, with the keys of RV(device); null when the read failed.
      type: dict
      returned: always
      sample: {"name": "pump-7", "iccid": "8988280666000000001", "status": 1, "message_count": 42}
    msg:
      description: What went wrong.
      type: str
      returned: when status is C(failed)
      sample: "HTTP 404 Not Found for ICCID 8988280666000000009: ICCID not found"
summary:
  description: Counts over RV(results).
  returned: fleet mode, after validation
  type: dict
  sample: {"total": 3, "ok": 2, "failed": 1}
msg:
  description: On failure, what failed, naming the HTTP status and the API's message.
  returned: failure
  type: str
  sample: "HTTP 404 Not Found for ICCID 8988280666000000009: ICCID not found"
"""

from ansible_collections.monoz.link.plugins.module_utils._device_info import device_info_module_kwargs, run_device_info
from ansible_collections.monoz.link.plugins.module_utils._module_main import run_module


def main() -> None:
    run_module(device_info_module_kwargs(), run_device_info)


if __name__ == "__main__":
    main()
