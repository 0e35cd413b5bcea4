#!/usr/bin/python
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_report
short_description: Plan, tally and report the batches of a fleet push (internal helper of the fleet_push role)
version_added: 0.1.0
description:
  - Internal helper of the P(monoz.link.fleet_push#role) role; its options may change without notice. Use the
    role, not this module.
  - Runs on the controller only (an action plugin, no module process). The role calls it once to start a push
    (O(downlinks)), once after each batch (O(batch)) and once at the end (O(final=true)), and registers each result;
    the push keeps no facts.
  - The start writes the downlinks to a spool file in ansible-playbook's temporary directory (removed when
    ansible-playbook exits) and returns the first batch in RV(batch_devices); each batch call returns the next
    batch. So ansible-playbook holds one batch of the fleet at a time, never all of it.
  - Each batch call adds the batch's outcome to RV(tally) and returns the progress line in RV(msg); a batch after a
    stop reason (an HTTP 401, more failures than O(max_failures), a batch that failed as a whole) is reported as not
    attempted. The final call removes the spool file and returns the summary line in RV(msg), or fails with a
    message naming the number of failed devices, the stop reason and the first failure.
  - When the report path is set, the start writes an empty report and every batch appends its rows to a
    JSON-lines file beside the report and rewrites the report from it, atomically (a temporary file renamed over
    the report), so the report is whole after every batch.
  - 'The report is C({"summary": {total, sent, failed, skipped}, "devices": [{iccid, status, status_code, msg}, ...]});
    in check mode it is not written.'
author:
  - monoz.link contributors (@monoz-link)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - ansible.builtin.action_common_attributes.flow
attributes:
  check_mode:
    support: full
    details:
      - The tally and the lines are computed (with the C(would send) count); the report is not written.
      - The spool file is written in check mode too (it is ansible-playbook's temporary data, not a change).
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
  idempotent:
    description: When run again with the same arguments, the module changes nothing and reports no change.
    support: full
    details: It never changes anything but its own report file, which is output.
options:
  downlinks:
    version_added: 0.2.0
    description:
      - Start a push of these downlinks (the output of the P(monoz.link.render_each#lookup) lookup), in batches of
        O(batch_size).
      - Exactly one of O(downlinks) and O(tally).
    type: list
    elements: raw
  batch_size:
    version_added: 0.2.0
    description: Devices per batch, with O(downlinks).
    type: int
    default: 1000
  path:
    description:
      - Path of the JSON report on the controller, with O(downlinks); unset writes none. A relative path is relative
        to the playbook directory.
      - The rows file is a hidden file beside it, C(.<name>.rows.jsonl), removed by the final call.
    type: path
  shard_index:
    description: Shard index, with O(downlinks), shown in the summary line.
    type: int
    default: 0
  shard_count:
    description: Shard count, with O(downlinks), shown in the summary line when above 1.
    type: int
    default: 1
  tally:
    description: The RV(tally) returned by the previous call.
    type: dict
  batch:
    description: Number of the batch to count, from 1, with O(tally).
    type: int
  results:
    description:
      - The RV(monoz.link.monoz_downlink#module:results) of the batch; unset when the call failed as a whole or was not
        made (after a stop), when the batch's devices are read back from the spool file and reported as failed.
    type: list
    elements: dict
  msg:
    description: Why the batch failed as a whole (the module's message).
    type: str
  max_failures:
    description: Set the stop reason once more devices than this have failed.
    type: int
  final:
    description: The last call of a push, with O(tally).
    type: bool
    default: false
notes:
  - The report is output, not managed state, so writing it never reports a change.
seealso:
  - module: monoz.link.monoz_downlink
  - plugin: monoz.link.render_each
    plugin_type: lookup
"""

EXAMPLES = r"""
# Internal to the monoz.link.fleet_push role; shown here for completeness.
- name: Start a push
  monoz.link.fleet_report:
    downlinks: "{{ query('monoz.link.render_each', devices, payload='reboot') }}"
    batch_size: 500
    path: /var/tmp/push.report.json
  register: plan

- name: Count batch 1
  monoz.link.fleet_report:
    tally: "{{ plan.tally }}"
    batch: 1
    results: "{{ push.results }}"
  register: after_1
  # push: monoz.link.monoz_downlink with devices "{{ plan.batch_devices }}"

- name: Finish
  monoz.link.fleet_report:
    tally: "{{ after_1.tally }}"
    final: true
"""

RETURN = r"""
batch_devices:
  version_added: 0.2.0
  description: The downlinks of the next batch to send (the first with O(downlinks)); empty after the last batch or a stop.
  returned: with O(downlinks) or O(batch)
  type: list
  elements: dict
  sample: [{iccid: "8988280666000000001", payload: "reboot"}]
msg:
  version_added: 0.2.0
  description:
    - The start says how many devices and batches; a batch call gives the cumulative progress line, with the stop
      reason when this batch set it; the final call gives the summary line, or the failure message.
  returned: always
  type: str
  sample: "batch 3/10: 2,990 sent, 10 failed, 0 skipped"
summary:
  version_added: 0.2.0
  description: The final counts of the push (C(would_send) counts in check mode).
  returned: with O(final=true)
  type: dict
  sample: {total: 10000, sent: 9990, failed: 10, skipped: 0, would_send: 0}
tally:
  version_added: 0.2.0
  description:
    - The running totals of the push, to pass to the next call.
    - C(total), C(batch_count), C(path), C(shard_index), C(shard_count); C(spool) and C(offsets) - the spool file and
      where each batch starts in it; C(sent), C(failed), C(skipped), C(would_send) - devices so far;
      C(first_failure) - C({iccid, msg}) of the first failed device; C(stop) - why no further batch starts, empty
      while none.
  returned: with O(downlinks) or O(batch)
  type: dict
  sample:
    total: 10000
    batch_count: 10
    path: /var/tmp/push.report.json
    shard_index: 0
    shard_count: 1
    spool: /root/.ansible/tmp/ansible-local-1234abcd/fleet_push-x1y2z3.jsonl
    offsets: [0, 61000, 122000, 183000, 244000, 305000, 366000, 427000, 488000, 549000, 610000]
    sent: 990
    failed: 10
    skipped: 0
    would_send: 0
    first_failure: {iccid: "8988280666000000001", msg: "HTTP 404 Not Found for ICCID 8988280666000000001: ..."}
    stop: ""
"""
