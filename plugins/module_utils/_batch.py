# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Downlinks on the fleet engine: publish each message, journal each delivery.

Private to the monoz.link collection: not a public API, it may change without notice.

``BatchRun`` is a ``FleetRun`` whose operation publishes one downlink: a
message already in the journal is skipped without a request, a confirmed
delivery is journaled, and several messages to one ICCID keep their order.
"""

from __future__ import annotations

import threading

from ._fleet import FleetRun, Operation, error_fields
from ._fleet import summarise as _summarise
from ._journal import JournalError

STATUS_SENT = "sent"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"
STATUS_WOULD_SEND = "would_send"
STATUSES = (STATUS_SENT, STATUS_FAILED, STATUS_SKIPPED, STATUS_WOULD_SEND)


def device_result(iccid: str, status: str, status_code=None, response=None, attempts: int = 0, msg=None) -> dict:
    result = {"iccid": iccid, "status": status, "status_code": status_code, "response": response, "attempts": attempts}
    if msg is not None:
        result["msg"] = msg
    return result


class DownlinkOperation(Operation):
    earlier = "message to this ICCID in this batch"

    def __init__(self, client, downlinks: list, digests: list | None, journal=None) -> None:
        self.client = client
        self.downlinks = downlinks
        # digests[i] is the journal identity of downlinks[i] (None without a journal).
        self.digests = digests
        self.journal = journal
        # (ICCID, error) of deliveries the journal could not record.
        self.journal_errors: list = []
        self._errors_lock = threading.Lock()
        self._shared_response: dict | None = None

    def settled(self, index: int, downlink) -> dict | None:
        if self.digests is not None and self.digests[index] in self.journal:
            return device_result(downlink.iccid, STATUS_SKIPPED)
        return None

    def plan(self, index: int, downlink) -> dict:
        return device_result(downlink.iccid, STATUS_WOULD_SEND)

    def perform(self, index: int, downlink) -> dict:
        outcome = self.client.publish(downlink.body)
        if self.journal is not None:
            try:
                self.journal.record(self.digests[index], self.client.org_id, downlink.iccid, outcome.status_code)
            except (OSError, JournalError) as exc:
                # The device has the message; only the record of it is lost.
                with self._errors_lock:
                    self.journal_errors.append((downlink.iccid, exc))
        return device_result(downlink.iccid, STATUS_SENT, outcome.status_code, self._share(outcome.response),
                             outcome.attempts)

    def failure(self, index: int, downlink, msg: str, error=None) -> dict:
        status_code, response, attempts = error_fields(error)
        return device_result(downlink.iccid, STATUS_FAILED, status_code, response, attempts, msg)

    def redact(self, text: str) -> str:
        return self.client.redact(text) if self.client is not None else text

    def _share(self, response: dict) -> dict:
        # Nearly every success body is the same {"Error": false, ...}: keep
        # one copy instead of 100,000 equal dicts (35 MB at that size).
        # Results are read-only once returned, so sharing is safe.
        shared = self._shared_response
        if shared is not None and response == shared:
            return shared
        self._shared_response = response
        return response


class BatchRun(FleetRun):
    """Sends a list of downlinks; ``run`` returns one result dict per downlink, in input order."""

    def __init__(self, client, downlinks: list, digests: list | None, journal=None, concurrency: int = 8) -> None:
        super().__init__(downlinks, DownlinkOperation(client, downlinks, digests, journal), concurrency,
                         name="monoz-downlink")

    @property
    def journal_errors(self) -> list:
        return [f"ICCID {iccid}: {error}" for iccid, error in self.operation.journal_errors]


def summarise(results: list) -> dict:
    return _summarise(results, STATUSES)
