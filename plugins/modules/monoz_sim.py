#!/usr/bin/python
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: monoz_sim
short_description: Enable or disable SIMs through Monoz Link
version_added: 0.2.0
description:
  - Brings the SIM of one device (O(iccid)) or of a fleet (O(devices)) to O(state).
  - For each SIM it reads the current state (C(GET Sim/Enable/{ICCID})) and sends C(PUT Sim/Enable) only when the
    state differs, so a second run sends no change and reports RV(ignore:changed=false).
  - A disabled SIM is deactivated, so its device goes offline and receives nothing until the SIM is enabled again.
  - A fleet is worked in parallel over one pooled keep-alive connection set, with an optional rate limit.
  - Every option and every device is validated before the first request, so bad input sends nothing.
  - Both endpoints come from pages the vendor has written but not yet published; they may still change.
author:
  - monoz.link contributors (@monoz-link)
extends_documentation_fragment:
  - monoz.link.connection
  - monoz.link.attributes
attributes:
  check_mode:
    support: full
    details: Reads each SIM's state and changes nothing; RV(results) and the diff show what a real run would change.
  diff_mode:
    support: full
    details:
      - C(before) and C(after) each hold one key, C(enabled), true or false; a fleet gives one diff per SIM that
        changes, headed by its ICCID.
  idempotent:
    support: full
options:
  state:
    description:
      - The state the SIMs should be in.
    type: str
    required: true
    choices: [enabled, disabled]
  iccid:
    description:
      - ICCID of the one SIM, digits only, 1 to 22 of them.
      - Exactly one of O(iccid) and O(devices) is required.
    type: str
  devices:
    description:
      - Many SIMs in one task.
      - Each element is an ICCID string, or a dict with key C(iccid); other keys of a dict are ignored, so the device
        list of M(monoz.link.monoz_downlink), a CSV or an inventory feeds this module unchanged.
      - Several entries for one ICCID are worked one after another in list order.
      - Results come back in input order in RV(results). An empty list changes nothing.
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
      - Most requests per second to start across the whole fleet (the reads and the changes), retries included,
        with no initial burst.
      - V(0) means unlimited.
    type: float
    default: 0
notes:
  - The task fails when any SIM failed, and still returns every SIM's result in RV(results).
  - An HTTP 401 stops a fleet at once, since the key is wrong for every device;
    SIMs not attempted are reported C(failed) with a RV(results[].msg) saying so.
seealso:
  - module: monoz.link.monoz_device_info
    description: Read a device's details, its SIM status among them.
  - module: monoz.link.monoz_sim_reset
    description: Reset a SIM's connectivity.
  - ref: ansible_collections.monoz.link.docsite.user_guide
    description: The collection's user guide (credentials, fleets and the journal, troubleshooting).
"""

EXAMPLES = r"""
- name: Disable the SIM of a returned device
  monoz.link.monoz_sim:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    iccid: "8988280666000000001"
    state: disabled

- name: Decommission every device listed in a CSV, and see what changed
  monoz.link.monoz_sim:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    devices: "{{ query('monoz.link.csv_devices', 'returned.csv') }}"
    state: disabled
    concurrency: 16
  register: decommission

- name: Report
  ansible.builtin.debug:
    msg: "{{ decommission.summary.changed }} disabled, {{ decommission.summary.unchanged }} already were"
"""

RETURN = r"""
enabled:
  description:
    - Whether the SIM is enabled after the task (in check mode, would be).
  returned: single mode, once the state was read
  type: bool
  sample: false
results:
  description: One entry per element of O(devices), in input order.
  returned: fleet mode, after validation
  type: list
  elements: dict
  contains:
    iccid:
      description: The SIM's ICCID.
      type: str
      returned: always
      sample: "8988280666000000001"
    status:
      description:
        - C(changed) when the state was changed, C(unchanged) when it already was O(state), C(would_change) in
          check mode when a real run would change it, C(failed) when the read or the change failed (or the SIM was
          not attempted).
      type: str
      returned: always
      sample: changed
    before:
      description: Whether the SIM was enabled before; null when it could not be read.
      type: bool
      returned: always
      sample: true
    after:
      description: Whether the SIM is enabled after (in check mode, would be); null when it could not be read.
      type: bool
      returned: always
      sample: false
    msg:
      description: What went wrong.
      type: str
      returned: when status is C(failed)
      sample: "HTTP 404 Not Found for ICCID 8988280666000000009: ICCID not found"
summary:
  description: Counts over RV(results).
  returned: fleet mode, after validation
  type: dict
  sample: {"total": 3, "changed": 1, "unchanged": 1, "would_change": 0, "failed": 1}
msg:
  description: On failure, what failed, naming the HTTP status and the API's message.
  returned: failure
  type: str
  sample: "HTTP 404 Not Found for ICCID 8988280666000000009: ICCID not found"
"""

from ansible_collections.monoz.link.plugins.module_utils._sim import run_sim, sim_module_kwargs
from ansible_collections.monoz.link.plugins.module_utils._module_main import run_module


def main() -> None:
    run_module(sim_module_kwargs(), run_sim)


if __name__ == "__main__":
    main()
