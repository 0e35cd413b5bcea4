# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet engine: one operation over many devices, in parallel, in order per device.

Private to the monoz.link collection: not a public API, it may change without notice.

Every module that works device by device hands ``FleetRun`` its items (each
with an ``iccid``) and an ``Operation`` saying what to do with one of them.
Items are grouped into one chain per ICCID, in input order; ``concurrency``
worker threads take whole chains from a shared iterator.  So requests for one
device go out one after another (config before reboot) while different
devices go in parallel, and the memory used does not grow with the number of
workers: no per-device thread or future, no copy of the input per worker.

The rules are the same for every module: a 401 stops the fleet at once (the
key is wrong for every device) and the items never attempted are failed with
a message saying so; once an item fails, the later items for that ICCID are
not attempted; every item gets a result, in input order.
"""

from __future__ import annotations

import threading
from collections import Counter

from ._api_client import MonozAPIError, MonozAuthError, MonozError

STATUS_FAILED = "failed"


def error_fields(error) -> tuple:
    """``(status_code, response, attempts)`` of a client error; Nones and 0 for anything else."""
    if isinstance(error, MonozAPIError):
        return error.status_code, error.result.response, error.attempts
    if isinstance(error, MonozError):
        return None, None, error.attempts
    return None, None, 0


class Operation:
    """What one module does for one item; the engine calls it from worker threads.

    ``perform`` makes the requests and returns the item's result dict (with
    ``status``), raising ``MonozError`` when the API refused; ``failure``
    builds the result of an item that failed or was never attempted (``error``
    is the client error, or None).  ``plan`` is check mode for an operation
    that sends nothing then; ``settled`` gives a result without any request
    (a journal that already holds the item), or None.
    """

    # Completes "not attempted: an earlier ... failed".
    earlier = "request for this ICCID in this batch"

    def settled(self, index: int, item) -> dict | None:
        return None

    def plan(self, index: int, item) -> dict:
        raise NotImplementedError

    def perform(self, index: int, item) -> dict:
        raise NotImplementedError

    def failure(self, index: int, item, msg: str, error=None) -> dict:
        raise NotImplementedError

    def redact(self, text: str) -> str:
        return text


class FleetRun:
    """Runs ``operation`` over ``items``; ``run`` returns one result per item, in input order."""

    def __init__(self, items: list, operation: Operation, concurrency: int = 8, name: str = "monoz-fleet") -> None:
        self.items = items
        self.operation = operation
        self.concurrency = concurrency
        self.name = name
        self.results: list = [None] * len(items)
        self.auth_failure: MonozAuthError | None = None
        self._stop = threading.Event()
        self._chains_lock = threading.Lock()
        self._chains = None

    def pending_chains(self) -> dict:
        """ICCID -> indices still to do, in input order; settled items get their result here."""
        chains: dict = {}
        for index, item in enumerate(self.items):
            settled = self.operation.settled(index, item)
            if settled is not None:
                self.results[index] = settled
                continue
            chains.setdefault(item.iccid, []).append(index)
        return chains

    def plan(self) -> list:
        """Check mode for an operation that sends nothing then: what a real run would do."""
        for indices in self.pending_chains().values():
            for index in indices:
                self.results[index] = self.operation.plan(index, self.items[index])
        return self.results

    def run(self) -> list:
        chains = list(self.pending_chains().values())
        self._chains = iter(chains)
        count = min(self.concurrency, len(chains))
        if count <= 1:
            # One worker: this thread is it (one device, or concurrency 1).
            self._work()
            return self.results
        workers = [
            threading.Thread(target=self._work, name=f"{self.name}-{number}", daemon=True)
            for number in range(count)
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
                    # A later request (say, a reboot) must not overtake or
                    # replace an earlier one (the config) that did not work.
                    self.results[index] = self._not_attempted(
                        index, f"not attempted: an earlier {self.operation.earlier} failed"
                    )
                else:
                    self.results[index] = self._attempt(index)
                    previous_failed = self.results[index]["status"] == STATUS_FAILED

    def _not_attempted(self, index: int, msg: str) -> dict:
        return self.operation.failure(index, self.items[index], msg)

    def _attempt(self, index: int) -> dict:
        item = self.items[index]
        try:
            return self.operation.perform(index, item)
        except MonozAuthError as exc:
            # A refused key is refused for every device: stop starting requests.
            self.auth_failure = exc
            self._stop.set()
            return self.operation.failure(index, item, exc.message, exc)
        except MonozError as exc:
            return self.operation.failure(index, item, exc.message, exc)
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Last line of defence in a worker thread: an exception escaping
            # here would leave this device without any result at all.
            msg = self.operation.redact(f"unexpected error: {type(exc).__name__}: {exc}")
            return self.operation.failure(index, item, msg)


def summarise(results: list, statuses) -> dict:
    """``{"total": n, <status>: count, ...}`` with every status of ``statuses``, zeros included."""
    counts = Counter(result["status"] for result in results)
    summary = {"total": len(results)}
    for status in statuses:
        summary[status] = counts[status]
    return summary
