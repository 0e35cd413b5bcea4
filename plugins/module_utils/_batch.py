# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The batch engine: many downlinks over one client, in parallel, in order per device.

Private to the monoz.link collection: not a public API, it may change without notice.

Downlinks are grouped into one chain per ICCID, in input order; ``concurrency``
worker threads take whole chains from a shared iterator.  So messages to one
device go out one after another (config before reboot) while different
devices go in parallel, and the memory used does not grow with the number of
workers: no per-device thread or future, no copy of the input per worker.
"""

from __future__ import annotations

import threading
from collections import Counter

from ._api_client import MonozAPIError, MonozAuthError, MonozError
from ._journal import JournalError

STATUS_SENT = "sent"
STATUS_FAILED = "failed"
STATUS_SKIPPED = "skipped"
STATUS_WOULD_SEND = "would_send"


def device_result(iccid: str, status: str, status_code=None, response=None, attempts: int = 0, msg=None) -> dict:
    result = {"iccid": iccid, "status": status, "status_code": status_code, "response": response, "attempts": attempts}
    if msg is not None:
        result["msg"] = msg
    return result


class BatchRun:
    """Sends a list of downlinks; ``run`` returns one result dict per downlink, in input order."""

    def __init__(self, client, downlinks: list, digests: list | None, journal=None, concurrency: int = 8) -> None:
        self.client = client
        self.downlinks = downlinks
        # digests[i] is the journal identity of downlinks[i] (None without a journal).
        self.digests = digests
        self.journal = journal
        self.concurrency = concurrency
        self.results: list = [None] * len(downlinks)
        self.auth_failure: MonozAuthError | None = None
        self.journal_errors: list[str] = []
        self._stop = threading.Event()
        self._chains_lock = threading.Lock()
        self._chains = None
        self._shared_response: dict | None = None

    def pending_chains(self) -> dict:
        """ICCID -> indices still to send, in input order; journaled ones are marked skipped."""
        chains: dict = {}
        for index, downlink in enumerate(self.downlinks):
            if self.digests is not None and self.digests[index] in self.journal:
                self.results[index] = device_result(
                    downlink.iccid, STATUS_SKIPPED, msg=None
                )
                continue
            chains.setdefault(downlink.iccid, []).append(index)
        return chains

    def plan(self) -> list:
        """Check mode: what a real run would do, with nothing sent."""
        for indices in self.pending_chains().values():
            for index in indices:
                self.results[index] = device_result(self.downlinks[index].iccid, STATUS_WOULD_SEND)
        return self.results

    def run(self) -> list:
        chains = self.pending_chains()
        self._chains = iter(list(chains.values()))
        workers = [
            threading.Thread(target=self._work, name=f"monoz-downlink-{number}", daemon=True)
            for number in range(min(self.concurrency, len(chains)))
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return self.results

    def _next_chain(self):
        with self._chains_lock:
            return next(self._chains, None)

    def _work(self) -> None:
        while True:
            chain = self._next_chain()
            if chain is None:
                return
            previous_failed = False
            for index in chain:
                if self._stop.is_set():
                    self.results[index] = self._not_attempted(
                        index, f"not attempted: the batch stopped after {self.auth_failure.message}"
                    )
                elif previous_failed:
                    # A later message (say, a reboot) must not overtake or
                    # replace an earlier one (the config) that did not arrive.
                    self.results[index] = self._not_attempted(
                        index, "not attempted: an earlier message to this ICCID in this batch failed"
                    )
                else:
                    self.results[index] = self._send(index)
                    previous_failed = self.results[index]["status"] == STATUS_FAILED

    def _not_attempted(self, index: int, msg: str) -> dict:
        return device_result(self.downlinks[index].iccid, STATUS_FAILED, msg=msg)

    def _send(self, index: int) -> dict:
        downlink = self.downlinks[index]
        try:
            outcome = self.client.publish(downlink.body)
        except MonozAuthError as exc:
            # A refused key is refused for every device: stop starting requests.
            self.auth_failure = exc
            self._stop.set()
            return device_result(downlink.iccid, STATUS_FAILED, exc.status_code, exc.result.response, exc.attempts, exc.message)
        except MonozAPIError as exc:
            return device_result(downlink.iccid, STATUS_FAILED, exc.status_code, exc.result.response, exc.attempts, exc.message)
        except MonozError as exc:
            return device_result(downlink.iccid, STATUS_FAILED, None, None, exc.attempts, exc.message)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Last line of defence in a worker thread: an exception escaping
            # here would leave this device without any result at all.
            return device_result(
                downlink.iccid, STATUS_FAILED, msg=self.client.redact(f"unexpected error: {type(exc).__name__}: {exc}")
            )
        if self.journal is not None:
            try:
                self.journal.record(self.digests[index], self.client.org_id, downlink.iccid, outcome.status_code)
            except (OSError, JournalError) as exc:
                # The device has the message; only the record of it is lost.
                self.journal_errors.append(f"ICCID {downlink.iccid}: {exc}")
        return device_result(downlink.iccid, STATUS_SENT, outcome.status_code, self._share(outcome.response), outcome.attempts)

    def _share(self, response: dict) -> dict:
        # Nearly every success body is the same {"Error": false, ...}: keep
        # one copy instead of 100,000 equal dicts (35 MB at that size).
        # Results are read-only once returned, so sharing is safe.
        shared = self._shared_response
        if shared is not None and response == shared:
            return shared
        self._shared_response = response
        return response


def summarise(results: list) -> dict:
    counts = Counter(result["status"] for result in results)
    return {
        "total": len(results),
        "sent": counts[STATUS_SENT],
        "failed": counts[STATUS_FAILED],
        "skipped": counts[STATUS_SKIPPED],
        "would_send": counts[STATUS_WOULD_SEND],
    }
