# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the monoz_downlink module does, independent of how it is run.

Private to the monoz.link collection: not a public API, it may change without notice.

``run_downlink`` takes the validated option values and returns the task
result, through the shared runner (``_runner.py``) and the fleet engine
(``_batch.py`` on ``_fleet.py``); what is downlink's own is the bodies, the
journal and the single-device result.
"""

from __future__ import annotations

from ._api_client import MonozClient
from ._batch import STATUS_FAILED, STATUS_SKIPPED, STATUS_WOULD_SEND, STATUSES, BatchRun
from ._downlink_args import downlink_module_kwargs
from ._downlink_input import build_batch, build_downlink, downlink_digest
from ._journal import Journal
from ._runner import MAX_CONCURRENCY, MAX_RETRIES, FleetTask, TaskRun, run_task

__all__ = ["DownlinkRun", "MAX_CONCURRENCY", "MAX_RETRIES", "downlink_module_kwargs", "run_downlink"]

# The name from when only downlinks had a runner; the same class.
DownlinkRun = TaskRun

OPTION_NAMES = ("payload", "format", "topic", "qos", "retain")
MAX_JOURNAL_WARNINGS = 20


class DownlinkTask(FleetTask):
    statuses = STATUSES
    noun = "downlinks"
    # build_batch names a null devices itself ("devices must be a list").
    targets_required = False

    def __init__(self) -> None:
        super().__init__()
        self.journal = None
        self.digests = None

    def prepare(self, params: dict, run: TaskRun) -> None:
        super().prepare(params, run)
        self.journal = Journal(params["journal"]).load() if params.get("journal") else None
        if self.journal is not None and self.journal.ignored_lines:
            run.warnings.append(
                f"journal {self.journal.path}: ignored {self.journal.ignored_lines} unreadable line(s),"
                " e.g. a line torn by a crash"
            )
        if self.journal is not None:
            self.digests = [downlink_digest(params["org_id"], downlink.body) for downlink in self.items]

    def build_items(self, params: dict) -> list:
        org_id = params["org_id"]
        if params.get("iccid") is not None:
            return [build_downlink(org_id, params["iccid"], *(params.get(name) for name in OPTION_NAMES))]
        return build_batch(org_id, params.get("devices"), {name: params.get(name) for name in OPTION_NAMES})

    def fleet(self, client, check_mode: bool) -> BatchRun:
        return BatchRun(client, self.items, self.digests, self.journal, self.params["concurrency"])

    def execute(self, run: TaskRun, client, check_mode: bool) -> None:
        if self.journal is None:
            super().execute(run, client, check_mode)
            return
        try:
            if client is not None:
                self.journal.open_for_append()
            super().execute(run, client, check_mode)
        finally:
            self.journal.close()

    def changed(self, summary: dict) -> bool:
        return bool(summary["sent"] or summary["would_send"])

    def failure_detail(self, summary: dict) -> str:
        return f"{summary['sent']} sent, {summary['skipped']} skipped"

    def report_single(self, run: TaskRun, row: dict) -> None:
        downlink = self.items[0]
        result = run.result
        result["request"] = downlink.body
        result["attempts"] = row["attempts"]
        if row["status"] == STATUS_SKIPPED:
            result["msg"] = (
                f"identical message already delivered to ICCID {downlink.iccid} (journal {self.journal.path})"
            )
            return
        if row["status"] == STATUS_WOULD_SEND:
            result["changed"] = True
            return
        if row["status_code"] is not None:
            result.update(status_code=row["status_code"], response=row["response"])
        if row["status"] == STATUS_FAILED:
            run.fail(row["msg"])
            return
        result["changed"] = True

    def finish(self, run: TaskRun, fleet: BatchRun) -> None:
        errors = fleet.operation.journal_errors
        if self.single:
            run.warnings.extend(f"message delivered but not journaled: {error}" for _iccid, error in errors)
        else:
            run.warnings.extend(f"delivered but not journaled: {error}"
                                for error in fleet.journal_errors[:MAX_JOURNAL_WARNINGS])


def run_downlink(params: dict, check_mode: bool, client_factory=MonozClient) -> TaskRun:
    """Validate everything, then send (or plan, in check mode); never raises for bad input."""
    return run_task(DownlinkTask(), params, check_mode, client_factory)
