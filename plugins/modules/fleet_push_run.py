#!/usr/bin/python
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: fleet_push_run
short_description: Run a fleet push in batches (internal helper of the fleet_push role)
version_added: 0.2.0
description:
  - Internal helper of the P(monoz.link.fleet_push#role) role; its options may change without notice. Use the
    role, not this module.
  - Runs on the controller (an action plugin). First it reads every device of the shard (O(devices), or
    O(devices_csv) row by row), renders and checks each device's downlink with the rules of
    M(monoz.link.monoz_downlink) and writes them to a spool file in ansible-playbook's temporary directory; a bad
    device fails the task, naming it, before anything is sent.
  - Then it calls M(monoz.link.monoz_downlink) once per batch of O(batch_size) devices, exactly as a task of that
    module would run (its C(module_defaults), its controller path or its module process), and after each batch
    prints a cumulative progress line and appends the batch's rows to the report. At the end it prints the summary
    line, or fails with a message naming the failed devices.
  - No further batch starts after an HTTP 401, after more failures than O(max_failures), or after a batch that
    failed as a whole; its devices are reported as not attempted.
  - So ansible-playbook holds one batch of the fleet at a time, never all of it.
author:
  - monoz.link contributors (@monoz-link)
extends_documentation_fragment:
  - monoz.link.attributes
attributes:
  check_mode:
    support: full
    details:
      - Each batch runs M(monoz.link.monoz_downlink) in check mode; the report is not written.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details: As M(monoz.link.monoz_downlink), with O(journal).
options:
  devices:
    description: The devices, dicts with an C(iccid) key (see P(monoz.link.fleet_push#role)).
    type: list
    elements: raw
  devices_csv:
    description: Path of a CSV file of devices on the controller, searched like O(devices) of the role.
    type: str
  template:
    description: Jinja2 template rendered once per device, with C(device) in scope.
    type: str
  payload:
    description:
      - The same payload for every device, as the one element of a list (inside a list, a string that looks like
        JSON stays a string on every ansible-core).
    type: list
    elements: raw
  batch_size:
    description: Devices per M(monoz.link.monoz_downlink) call.
    type: int
    default: 1000
  report:
    description: Path of the JSON report on the controller; relative to the playbook directory.
    type: path
  shard_index:
    description: This shard's index; the devices at positions C(i % shard_count == shard_index) are pushed.
    type: int
    default: 0
  shard_count:
    description: The number of shards.
    type: int
    default: 1
  max_failures:
    description: No further batch starts once more devices than this have failed.
    type: int
  org_id:
    description: Passed to M(monoz.link.monoz_downlink) when set, as each of the options below.
    type: raw
  api_key:
    description: Passed to M(monoz.link.monoz_downlink) when set; masked in every message.
    type: raw
  api_url:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  validate_certs:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  timeout:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  retries:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  topic:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  qos:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  format:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  retain:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  concurrency:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  rate_limit:
    description: As M(monoz.link.monoz_downlink).
    type: raw
  journal:
    description: As M(monoz.link.monoz_downlink).
    type: raw
notes:
  - 'The report, C({"summary": {total, sent, failed, skipped}, "devices": [{iccid, status, status_code, msg}, ...]}),
    is valid JSON after every batch. Its summary sits in a padded field at the start of the file so that it can be
    updated in place while the rows are appended.'
seealso:
  - module: monoz.link.monoz_downlink
  - plugin: monoz.link.render_each
    plugin_type: lookup
"""

EXAMPLES = r"""
# Internal to the monoz.link.fleet_push role; shown here for completeness.
- name: Push a CSV of devices
  monoz.link.fleet_push_run:
    devices_csv: devices.csv
    template: apn_config.json.j2
    batch_size: 500
    report: /var/tmp/push.report.json
"""

RETURN = r"""
msg:
  description: The summary line, or the failure message naming the first failed device and any stop reason.
  returned: always
  type: str
  sample: "fleet_push: 10,000 device(s): 9,990 sent, 10 failed, 0 skipped; report /var/tmp/push.report.json"
summary:
  description: The counts of the push (C(would_send) counts in check mode).
  returned: success and when devices failed
  type: dict
  sample: {total: 10000, sent: 9990, failed: 10, skipped: 0, would_send: 0}
"""
