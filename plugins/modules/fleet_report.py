#!/usr/bin/python
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Tally the batches of a fleet push and keep its JSON report (internal helper of the fleet_push role)
version_added: 0.2.0
description:
  - Internal helper of the P(monoz.link.fleet_push#role) role; its options may change without notice. Use the
    role, not this module.
  - Runs on the controller only (an action plugin, no module process). Called once after each batch and once at
    the end of a push. It adds the batch's outcome to the running totals, which it returns as the fact
    C(__fleet_push_tally), and, when O(path) is set, appends the batch's report rows to a JSON-lines file beside
    the report and rewrites the report from it, atomically (a temporary file renamed over the report). So the
    report is whole after every batch, also after a batch that failed, while the push keeps only its totals in
    memory, however large the fleet.
  - 'The report is C({"summary": {total, sent, failed, skipped}, "batches": {done, total}, "shard": {index, count},
    "devices": [{iccid, status, status_code, msg}, ...]}); in check mode nothing is written.'
author:
  - monoz.link contributors (@monoz-link)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details: The totals are kept; the report is not written.
  diff_mode:
    support: none
  platform:
    platforms: all
  action:
    support: full
  async:
    support: none
  bypass_host_loop:
    support: none
options:
  tally:
    description: The totals so far, as returned in RV(ansible_facts.__fleet_push_tally) by the previous call; unset starts a push.
    type: dict
  results:
    description: The RV(monoz.link.monoz_downlink#module:results) of one batch.
    type: list
    elements: dict
  devices:
    description:
      - Devices (ICCID strings or dicts with C(iccid)) that got no result, reported as failed with O(msg) - the
        devices of a batch that failed as a whole, or, with O(final=true), the devices never attempted.
    type: list
    elements: raw
    default: []
  msg:
    description: Message of the rows of O(devices).
    type: str
    default: the module call failed
  batch:
    description: Number of this batch, from 1. Batch 1 starts a new report.
    type: int
    default: 0
  batch_count:
    description: Number of batches of the push.
    type: int
    default: 0
  total:
    description: Number of devices of the push (the report's C(summary.total)).
    type: int
    required: true
  max_failures:
    description: Set the stop reason once more devices than this have failed.
    type: int
  shard_index:
    description: Shard index, recorded in the report.
    type: int
    default: 0
  shard_count:
    description: Shard count, recorded in the report.
    type: int
    default: 1
  final:
    description: The last call of a push; writes the report even when no batch ran, and removes the rows file.
    type: bool
    default: false
  path:
    description:
      - Path of the JSON report on the controller; unset keeps only the totals.
      - The rows file is a hidden file beside it, C(.<name>.rows.jsonl).
    type: path
notes:
  - The report is output, not managed state, so writing it never reports a change.
seealso:
  - module: monoz.link.monoz_downlink
"""

EXAMPLES = r"""
# Internal to the monoz.link.fleet_push role; shown here for completeness.
- name: Count batch 1 and update the report
  monoz.link.fleet_report:
    results: "{{ push.results }}"
    batch: 1
    batch_count: 10
    total: 10000
    path: /var/tmp/push.report.json
"""

RETURN = r"""
ansible_facts:
  description: The running totals of the push.
  returned: success
  type: dict
  contains:
    __fleet_push_tally:
      description:
        - C(sent), C(failed), C(skipped), C(would_send) - devices so far; C(done) - devices attempted;
          C(batches_done); C(first_failure) - C({iccid, msg}) of the first failed device;
          C(stop) - why no further batch should start, empty while none; C(stop_batch) - the batch that set it.
      type: dict
      returned: success
      sample:
        sent: 990
        failed: 10
        skipped: 0
        would_send: 0
        done: 1000
        batches_done: 1
        first_failure: {iccid: "8988280666000000001", msg: "HTTP 404 Not Found for ICCID 8988280666000000001: ..."}
        stop: ""
        stop_batch: 0
"""
