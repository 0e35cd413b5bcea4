#!/usr/bin/python
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: monoz_sim_reset
short_description: Reset the connectivity of SIMs through Monoz Link
version_added: 0.2.0
description:
  - Starts a reset of the connectivity of one SIM (O(iccid)) or of a fleet (O(devices)) through the Monoz Link
    C(PUT Sim/Reset) API. The device drops its connection and connects again, which often brings a silent device
    back; once it subscribes again, a retained downlink reaches it again.
  - A reset is an action, not a state, so the module reports RV(ignore:changed=true) whenever it sends one.
  - A fleet is reset in parallel over one pooled keep-alive connection set, with an optional rate limit.
  - Every option and every device is validated before the first request, so bad input sends nothing.
  - An HTTP 500 is never retried, nor is a read timeout, because the reset may have started and a second one would
    cut the device off again.
author:
  - monoz.link contributors (@monoz-link)
extends_documentation_fragment:
  - monoz.link.connection
  - monoz.link.attributes
attributes:
  check_mode:
    support: full
    details: Nothing is sent; RV(results) shows C(would_send) for each SIM and RV(ignore:changed) what a real run would report.
  diff_mode:
    support: none
  idempotent:
    support: none
    details: Every run resets again.
options:
  iccid:
    description:
      - ICCID of the one SIM to reset, digits only, 1 to 22 of them.
      - Exactly one of O(iccid) and O(devices) is required.
    type: str
  devices:
    description:
      - Many SIMs to reset in one task.
      - Each element is an ICCID string, or a dict with key C(iccid); other keys of a dict are ignored, so the device
        list of M(monoz.link.monoz_downlink), a CSV or an inventory feeds this module unchanged.
      - Several entries for one ICCID are reset one after another in list order; once one fails, the later ones
        for that ICCID are not attempted.
      - Results come back in input order in RV(results). An empty list resets nothing.
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
      - Most resets per second to start across the whole fleet, retries included, with no initial burst.
      - V(0) means unlimited. Resetting a whole fleet at once makes every device reconnect at once; a rate spreads
        the reconnections out.
    type: float
    default: 0
notes:
  - The task fails when any SIM failed, and still returns every SIM's result in RV(results).
  - An HTTP 401 stops a fleet at once, since the key is wrong for every device;
    SIMs not attempted are reported C(failed) with a RV(results[].msg) saying so.
seealso:
  - module: monoz.link.monoz_sim
    description: Enable or disable SIMs.
  - module: monoz.link.monoz_data_info
    description: Find the devices that went silent.
  - ref: ansible_collections.monoz.link.docsite.user_guide
    description: The collection's user guide (credentials, fleets and the journal, troubleshooting).
"""

EXAMPLES = r"""
- name: Reset the SIM of a silent device
  monoz.link.monoz_sim_reset:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    iccid: "8988280666000000001"

- name: Reset a fleet, at most 5 SIMs a second
  monoz.link.monoz_sim_reset:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    devices:
      - "8988280666000000001"
      - "8988280666000000002"
    rate_limit: 5
  register: reset

- name: Show the tally
  ansible.builtin.debug:
    var: reset.summary
"""

RETURN = r"""
status_code:
  description: HTTP status of the last attempt.
  returned: single mode, when a request was made
  type: int
  sample: 200
response:
  description: The API's JSON body.
  returned: single mode, when a response was received
  type: dict
  sample: {"StatusCode": 200, "Message": "UpdateSuccess"}
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
        - C(sent) when the API started the reset, C(would_send) in check mode, C(failed) when the API did not
          (or the SIM was not attempted).
      type: str
      returned: always
      sample: sent
    status_code:
      description: HTTP status of the last attempt; null when no response was received.
      type: int
      returned: always
      sample: 200
    msg:
      description: What went wrong.
      type: str
      returned: when status is C(failed)
      sample: "HTTP 404 Not Found for ICCID 8988280666000000009: ICCID not found"
summary:
  description: Counts over RV(results).
  returned: fleet mode, after validation
  type: dict
  sample: {"total": 3, "sent": 2, "would_send": 0, "failed": 1}
msg:
  description: On failure, what failed, naming the HTTP status and the API's message.
  returned: failure
  type: str
  sample: "HTTP 500 Internal Server Error for ICCID 8988280666000000009: reset failed"
"""

from ansible_collections.monoz.link.plugins.module_utils._sim_reset import run_sim_reset, sim_reset_module_kwargs
from ansible_collections.monoz.link.plugins.module_utils._module_main import run_module


def main() -> None:
    run_module(sim_reset_module_kwargs(), run_sim_reset)


if __name__ == "__main__":
    main()
