#!/usr/bin/python
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: monoz_data_info
short_description: Read the uplink history of devices from Monoz Link
version_added: 0.2.0
description:
  - Reads the uplink messages devices sent between O(start) and O(end) through the Monoz Link C(RawData) API, or
    with O(kind=failed) the uplinks Monoz Link failed to push to your own server (C(FailedData)).
  - Returns the records oldest first, and RV(newest), the timestamp to start the next window from.
  - One request per task; with O(iccid) or O(devices), only those devices' records are returned.
  - The data reads are only for organisations with the database feature, and the API keeps the data for 1 to 3 days
    depending on the plan. The vendor suggests reading every 4 to 24 hours.
author:
  - monoz.link contributors (@monoz-link)
extends_documentation_fragment:
  - monoz.link.connection
  - monoz.link.attributes
  - monoz.link.attributes.READ_ONLY
options:
  kind:
    description:
      - C(raw) reads every uplink the API stored (C(RawData)).
      - C(failed) reads the uplinks Monoz Link could not push to your webhook or cloud integration (C(FailedData)).
    type: str
    choices: [raw, failed]
    default: raw
  start:
    description:
      - Start of the window, inclusive.
      - An ISO 8601 time such as C(2024-03-11T04:19:55Z), C(2024-03-11T06:19:55+02:00) or C(2024-03-11); without a
        zone it is UTC. Up to nine fractional digits are kept, so RV(newest) of a previous run can be given as it is.
      - Or a look-back back from O(end), a number and a unit C(s), C(m), C(h), C(d) or C(w), such as C(30m), C(4h)
        or C(2d).
    type: str
    required: true
  end:
    description:
      - End of the window, inclusive, as an ISO 8601 time.
      - Defaults to now.
    type: str
  iccid:
    description:
      - Only the records of this device. ICCID digits only, 1 to 22 of them.
      - At most one of O(iccid) and O(devices); with neither, every device's records are returned.
    type: str
  devices:
    description:
      - Only the records of these devices.
      - Each element is an ICCID string, or a dict with key C(iccid); other keys of a dict are ignored, so the device
        list of M(monoz.link.monoz_downlink), a CSV or an inventory feeds this module unchanged.
      - An empty list returns no records.
    type: list
    elements: raw
notes:
  - The API returns records in no promised order; the module sorts them by timestamp.
  - The API's store may lag behind. To read without gaps, start each window at RV(newest) of the previous one; the
    record at that very timestamp then comes again, so drop records already seen.
  - When the API leaves a record's C(ICCID) empty (devices that publish with a topic), RV(records[].iccid) is taken
    from the topic level after the org ID, C(<org>/<iccid>/...).
seealso:
  - module: monoz.link.monoz_device_info
    description: Read a device's uplink and downlink counters.
  - ref: ansible_collections.monoz.link.docsite.user_guide
    description: The collection's user guide (credentials, fleets and the journal, troubleshooting).
"""

EXAMPLES = r"""
- name: Read the last 4 hours of uplinks
  monoz.link.monoz_data_info:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    start: 4h
  register: uplinks

- name: Read the next window, from the newest record seen
  monoz.link.monoz_data_info:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    start: "{{ uplinks.newest | default('4h', true) }}"
  register: next_uplinks

- name: Read one device's failed pushes of a given day
  monoz.link.monoz_data_info:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    kind: failed
    iccid: "8988280666000000001"
    start: "2024-03-11T00:00:00Z"
    end: "2024-03-11T23:59:59.999Z"
  register: failed_pushes

- name: Find the devices of a CSV that sent nothing in the last 24 hours
  vars:
    fleet: "{{ query('monoz.link.csv_devices', 'devices.csv') | map(attribute='iccid') }}"
  block:
    - name: Read a day of uplinks from those devices
      monoz.link.monoz_data_info:
        org_id: mti
        api_key: "{{ vault_monoz_api_key }}"
        devices: "{{ fleet }}"
        start: 24h
      register: day

    - name: List the silent ones
      ansible.builtin.debug:
        msg: "{{ fleet | difference(day.records | map(attribute='iccid')) }}"
"""

RETURN = r"""
records:
  description: The uplink records of the window, oldest first.
  returned: success
  type: list
  elements: dict
  contains:
    timestamp:
      description: When Monoz Link received the uplink, ISO 8601 in UTC with 7 fractional digits, as the API gives it.
      type: str
      sample: "2024-03-11T04:19:55.5799558Z"
    iccid:
      description: The device's ICCID; taken from the topic when the API leaves it empty, else null.
      type: str
      sample: "8988280666000000001"
    topic:
      description: The MQTT topic the device published on.
      type: str
      sample: "mti/8988280666000000001/status"
    payload:
      description: The uplink, as the API gives it.
      type: str
      sample: "DFa0FC31EE"
count:
  description: The number of RV(records).
  returned: success
  type: int
  sample: 2
newest:
  description:
    - The newest record's timestamp, to start the next window from; null when there is no record.
  returned: success
  type: str
  sample: "2024-03-11T04:19:55.5799558Z"
window:
  description: The window read, O(start) and O(end) resolved to UTC times.
  returned: success
  type: dict
  sample: {"start": "2024-03-11T00:19:55.0000000Z", "end": "2024-03-11T04:19:55.0000000Z"}
status_code:
  description: HTTP status of the failed request.
  returned: failure, when the API answered
  type: int
  sample: 400
msg:
  description: On failure, what failed, naming the HTTP status and the API's message.
  returned: failure
  type: str
  sample: "HTTP 400 Bad Request for RawData: StartTime is not in the correct format"
"""

from ansible_collections.monoz.link.plugins.module_utils._data_info import data_info_module_kwargs, run_data_info
from ansible_collections.monoz.link.plugins.module_utils._module_main import run_module


def main() -> None:
    run_module(data_info_module_kwargs(), run_data_info)


if __name__ == "__main__":
    main()
