# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: report_rows
short_description: Rows of a fleet push report from monoz_downlink results
version_added: 0.1.0
author:
  - monoz.link contributors (@monoz-link)
description:
  - Reduces each entry of the RV(monoz.link.monoz_downlink#module:results) list to the report row
    C({iccid, status, status_code, msg}), with C(msg) null unless the device failed.
  - An input element that is a plain ICCID string, or a dict without C(status), becomes a row with O(status)
    and O(msg); this is how the P(monoz.link.fleet_push#role) role reports devices of a batch that never ran.
options:
  _input:
    description: Results of M(monoz.link.monoz_downlink), or ICCIDs / device dicts.
    type: list
    elements: raw
    required: true
  status:
    description: Status for elements that carry none.
    type: str
    default: failed
  msg:
    description: Message for elements that carry none.
    type: str
  as_json:
    description:
      - Return the rows as JSON text, one compact row per line joined by C(,\n), ready to be placed between C([) and
        C(]). Building a large report from text is much cheaper than templating a list of thousands of dicts.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Report rows of one batch
  ansible.builtin.set_fact:
    rows: "{{ push.results | monoz.link.report_rows }}"

- name: Devices never attempted
  ansible.builtin.set_fact:
    rows: "{{ ['8988280666000000001'] | monoz.link.report_rows(msg='not attempted: stopped') }}"
"""

RETURN = r"""
_value:
  description:
    - One C({iccid, status, status_code, msg}) dict per input element, in input order.
    - With O(as_json=true), the same rows as one string of JSON text.
  type: raw
"""

import json
from collections.abc import Mapping


def report_rows(items, status: str = "failed", msg: str | None = None, as_json: bool = False):
    rows = []
    for item in items or []:
        if isinstance(item, Mapping) and "status" in item:
            rows.append({
                "iccid": item.get("iccid"),
                "status": item["status"],
                "status_code": item.get("status_code"),
                "msg": item.get("msg"),
            })
        else:
            iccid = item.get("iccid") if isinstance(item, Mapping) else item
            rows.append({"iccid": None if iccid is None else str(iccid), "status": status, "status_code": None, "msg": msg})
    if as_json:
        return ",\n".join(json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) for row in rows)
    return rows


class FilterModule:
    def filters(self):
        return {"report_rows": report_rows}
