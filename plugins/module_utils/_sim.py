# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the monoz_sim module does: bring SIMs to a state, reading first and writing only what differs.

Private to the monoz.link collection: not a public API, it may change without notice.

Per device: read ``Sim/Enable/{ICCID}``; when the SIM is already in the
asked state, nothing more (so a second run sends no PUT); otherwise, in check
mode report what would change, else ``PUT Sim/Enable``.  Check mode and diff
come from the same comparison.
"""

from __future__ import annotations

from ._api_client import MonozClient
from ._fleet import Operation
from ._module_args import module_kwargs
from ._runner import FleetTask, TaskRun, run_task

STATUS_CHANGED = "changed"
STATUS_UNCHANGED = "unchanged"
STATUS_WOULD_CHANGE = "would_change"
STATUS_FAILED = "failed"
STATES = {"enabled": True, "disabled": False}


def sim_module_kwargs() -> dict:
    """Keyword arguments for AnsibleModule (or ArgumentSpecValidator) of monoz_sim."""
    return module_kwargs({
        "state": {"type": "str", "required": True, "choices": list(STATES)},
    })


def sim_row(iccid: str, status: str, before, after, msg=None) -> dict:
    row = {"iccid": iccid, "status": status, "before": before, "after": after}
    if msg is not None:
        row["msg"] = msg
    return row


class SimOperation(Operation):
    earlier = "change of this ICCID in this batch"

    def __init__(self, client, enabled: bool, check_mode: bool) -> None:
        self.client = client
        self.enabled = enabled
        self.check_mode = check_mode
        # The state read for each index, for the result of a write that failed.
        # Each index is read and written by one worker, so no lock is needed.
        self.read: dict = {}

    def perform(self, index: int, target) -> dict:
        before = self.client.sim_enabled(target.iccid).data
        if before == self.enabled:
            return sim_row(target.iccid, STATUS_UNCHANGED, before, before)
        if self.check_mode:
            return sim_row(target.iccid, STATUS_WOULD_CHANGE, before, self.enabled)
        self.read[index] = before
        self.client.set_sim_enabled(target.iccid, self.enabled)
        del self.read[index]
        return sim_row(target.iccid, STATUS_CHANGED, before, self.enabled)

    def failure(self, index: int, target, msg: str, error=None) -> dict:
        # A failed write left the SIM as it was read; a failed read knows nothing.
        before = self.read.pop(index, None)
        return sim_row(target.iccid, STATUS_FAILED, before, before, msg)

    def redact(self, text: str) -> str:
        return self.client.redact(text)


def sim_diff(row: dict, header: bool) -> dict:
    diff = {"before": {"enabled": row["before"]}, "after": {"enabled": row["after"]}}
    if header:
        diff["before_header"] = diff["after_header"] = f"ICCID {row['iccid']}"
    return diff


class SimTask(FleetTask):
    statuses = (STATUS_CHANGED, STATUS_UNCHANGED, STATUS_WOULD_CHANGE, STATUS_FAILED)
    noun = "SIMs"
    reads_in_check_mode = True

    def operation(self, client, check_mode: bool) -> SimOperation:
        return SimOperation(client, STATES[self.params["state"]], check_mode)

    def changed(self, summary: dict) -> bool:
        return bool(summary[STATUS_CHANGED] or summary[STATUS_WOULD_CHANGE])

    def report_single(self, run: TaskRun, row: dict) -> None:
        if row["before"] is not None:
            run.result["enabled"] = row["after"]
        if row["status"] == STATUS_FAILED:
            run.fail(row["msg"])
            return
        run.result["changed"] = row["status"] != STATUS_UNCHANGED
        run.result["diff"] = sim_diff(row, header=False)

    def report_fleet(self, run: TaskRun, results: list, fleet) -> None:
        super().report_fleet(run, results, fleet)
        # One diff per SIM that changed (or would), each headed by its ICCID.
        run.result["diff"] = [sim_diff(row, header=True) for row in results
                              if row["status"] in (STATUS_CHANGED, STATUS_WOULD_CHANGE)]


def run_sim(params: dict, check_mode: bool, client_factory=MonozClient) -> TaskRun:
    """Bring every SIM to ``state``; reads in check mode too, writes only outside it."""
    return run_task(SimTask(), params, check_mode, client_factory)
