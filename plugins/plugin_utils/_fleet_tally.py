# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The tally, the printed lines and the report file of a fleet push.

Private to the monoz.link collection: not a public API, it may change without notice.

Every line the fleet_push role prints is built here, where the numbers are.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

COUNTED = ("sent", "failed", "skipped", "would_send")
STOP_401 = "the API refused the key (HTTP 401), so no further batch can succeed"


@dataclass
class Tally:
    """What a push has done so far; ``stop`` says why no further batch starts."""

    total: int
    batch_count: int
    path: str | None = None
    shard_index: int = 0
    shard_count: int = 1
    check_mode: bool = False
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    would_send: int = 0
    first_failure: dict = field(default_factory=dict)
    stop: str = ""

    def count_batch(self, batch: int, downlinks: list, result: dict | None, max_failures: int | None) -> list:
        """Add one batch's outcome and return its report rows.

        ``result`` is what monoz_downlink returned for the batch, None for a
        batch that was not attempted because the push had stopped.  A result
        without per-device results failed as a whole (its ``msg`` says why)
        and stops the push, like a 401 or more failures than ``max_failures``.
        """
        results = None if result is None else result.get("results")
        if result is None or not isinstance(results, list):
            if result is None:
                reason = f"not attempted: the push stopped because {self.stop}"
            else:
                reason = result.get("msg") or "the module call failed"
                self.stop = f"batch {batch}/{self.batch_count} failed as a whole: {reason}"
            rows = [{"iccid": item["iccid"], "status": "failed", "status_code": None, "msg": reason}
                    for item in downlinks]
        else:
            rows = [{"iccid": item.get("iccid"), "status": item.get("status"),
                     "status_code": item.get("status_code"), "msg": item.get("msg")} for item in results]
            if any(row["status_code"] == 401 for row in rows):
                self.stop = STOP_401
        for row in rows:
            if row["status"] in COUNTED:
                setattr(self, row["status"], getattr(self, row["status"]) + 1)
            if row["status"] == "failed" and not self.first_failure:
                self.first_failure = {"iccid": row["iccid"], "msg": row["msg"]}
        if not self.stop and max_failures is not None and self.failed > max_failures:
            self.stop = f"more than fleet_push_max_failures ({max_failures}) devices failed"
        return rows

    def counts(self) -> str:
        text = f"{self.sent:,} sent, {self.failed:,} failed, {self.skipped:,} skipped"
        return text + (f", {self.would_send:,} would send" if self.check_mode else "")

    def progress_line(self, batch: int, stopped_now: bool = False) -> str:
        line = f"batch {batch}/{self.batch_count}: {self.counts()}"
        return line + (f"; no further batch starts: {self.stop}" if stopped_now else "")

    def summary_line(self) -> str:
        where = ""
        if self.shard_count > 1:
            where = f" in shard index {self.shard_index} of {self.shard_count} shards"
        report = f"; report {self.path}" if self.path and not self.check_mode else ""
        return f"fleet_push: {self.total:,} device(s){where}: {self.counts()}{report}"

    def failure_message(self) -> str:
        stop = f"; stopped early because {self.stop}" if self.stop else ""
        first = self.first_failure
        report = f"; see the report {self.path}" if self.path and not self.check_mode else ""
        return (f"fleet_push: {self.failed:,} of {self.total:,} device(s) failed{stop};"
                f" first failure: ICCID {first.get('iccid')}: {first.get('msg')}{report}")

    def summary(self) -> dict:
        """The counts the role returns (``would_send`` is non-zero only in check mode)."""
        return {key: getattr(self, key) for key in ("total",) + COUNTED}

    def report_summary(self) -> dict:
        return {key: getattr(self, key) for key in ("total", "sent", "failed", "skipped")}


# The summary is written at the start of the report in a field of this many
# characters (JSON allows the padding), so that it can be rewritten in place
# after every batch while the rows are appended: each batch costs its own rows,
# never a rewrite of the whole report.
_SUMMARY_WIDTH = 160
_TRAILER = b"\n]}\n"


class ReportFile:
    """The report ``{"summary": {...}, "devices": [...]}``, whole after every batch.

    Rows are appended before the closing bracket, and the summary in its
    fixed-width field is rewritten, after each batch; so the report file is
    valid JSON between batches and after an interrupted push.
    """

    def __init__(self, path: str, summary: dict) -> None:
        self.path = path
        self._rows_written = 0
        with open(path, "wb") as out:
            out.write(self._header(summary) + _TRAILER)
        os.chmod(path, 0o644)

    @staticmethod
    def _header(summary: dict) -> bytes:
        text = json.dumps(summary, separators=(", ", ": "))
        return ('{"summary": ' + text.ljust(_SUMMARY_WIDTH) + ', "devices": [').encode("utf-8")

    def append(self, rows: list, summary: dict) -> None:
        if rows:
            text = ",".join(
                "\n" + json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) for row in rows
            )
            if self._rows_written:
                text = "," + text
            with open(self.path, "r+b") as out:
                out.seek(-len(_TRAILER), os.SEEK_END)
                out.write(text.encode("utf-8") + _TRAILER)
                out.truncate()
                out.seek(0)
                out.write(self._header(summary))
            self._rows_written += len(rows)
        else:
            with open(self.path, "r+b") as out:
                out.write(self._header(summary))
