# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the monoz_sim_reset module does: reset SIM connectivity, one device or a fleet.

Private to the monoz.link collection: not a public API, it may change without notice.

A reset is an action, not a state: always changed when sent, nothing sent
in check mode.  A 500 is never retried (the client's rule for every request):
the reset may have started, and a second one would cut the device off again.
"""

from __future__ import annotations

from ._api_client import MonozClient
from ._fleet import Operation, error_fields
from ._module_args import module_kwargs
from ._runner import FleetTask, TaskRun, run_task

STATUS_SENT = "sent"
STATUS_WOULD_SEND = "would_send"
STATUS_FAILED = "failed"


def sim_reset_module_kwargs() -> dict:
    """Keyword arguments for AnsibleModule (or ArgumentSpecValidator) of monoz_sim_reset."""
    return module_kwargs({})


def reset_row(iccid: str, status: str, status_code=None, msg=None) -> dict:
    row = {"iccid": iccid, "status": status, "status_code": status_code}
    if msg is not None:
        row["msg"] = msg
    return row


class SimResetOperation(Operation):
    earlier = "reset of this ICCID in this batch"

    def __init__(self, client, keep_responses: bool = False) -> None:
        self.client = client
        # The API's answers by index, for a single-device task's ``response``;
        # a fleet's results leave them out, so a fleet does not keep them.
        self.keep_responses = keep_responses
        self.responses: dict = {}

    def plan(self, index: int, target) -> dict:
        return reset_row(target.iccid, STATUS_WOULD_SEND)

    def perform(self, index: int, target) -> dict:
        outcome = self.client.reset_sim(target.iccid)
        if self.keep_responses:
            self.responses[index] = outcome.response
        return reset_row(target.iccid, STATUS_SENT, outcome.status_code)

    def failure(self, index: int, target, msg: str, error=None) -> dict:
        status_code, response, _attempts = error_fields(error)
        if self.keep_responses and response is not None:
            self.responses[index] = response
        return reset_row(target.iccid, STATUS_FAILED, status_code, msg)

    def redact(self, text: str) -> str:
        return self.client.redact(text) if self.client is not None else text


class SimResetTask(FleetTask):
    statuses = (STATUS_SENT, STATUS_WOULD_SEND, STATUS_FAILED)
    noun = "resets"

    def __init__(self) -> None:
        super().__init__()
        self._operation = None

    def operation(self, client, check_mode: bool) -> SimResetOperation:
        self._operation = SimResetOperation(client, keep_responses=self.single)
        return self._operation

    def changed(self, summary: dict) -> bool:
        return bool(summary[STATUS_SENT] or summary[STATUS_WOULD_SEND])

    def report_single(self, run: TaskRun, row: dict) -> None:
        if row["status"] == STATUS_WOULD_SEND:
            run.result["changed"] = True
            return
        if row["status_code"] is not None:
            run.result["status_code"] = row["status_code"]
        if 0 in self._operation.responses:
            run.result["response"] = self._operation.responses[0]
        if row["status"] == STATUS_FAILED:
            run.fail(row["msg"])
            return
        run.result["changed"] = True


def run_sim_reset(params: dict, check_mode: bool, client_factory=MonozClient) -> TaskRun:
    """Reset every SIM (nothing in check mode); always changed when a reset was, or would be, sent."""
    return run_task(SimResetTask(), params, check_mode, client_factory)
