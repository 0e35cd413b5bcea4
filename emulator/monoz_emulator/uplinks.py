"""Uplinks as Monoz Link keeps them: RawData and FailedData records, with 100 ns timestamps.

Records are `{"Timestamp", "Payload", "ICCID", "Topic"}` as the vendor's
RawData example shows. Timestamps carry 7 fractional digits (100 ns ticks);
each new record gets a tick later than the previous one, so a client that
starts its next window at the newest timestamp it saw never misses a record.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from datetime import datetime, timezone
from typing import Any

TICKS_PER_SECOND = 10_000_000
RETENTION_S = 72 * 3600  # the longest plan keeps data 72 hours


def format_ticks(ticks: int) -> str:
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S") + f".{fraction:07d}Z"


class UplinkStore:
    """RawData and FailedData per org, newest last; waiters for records not stored yet."""

    def __init__(self) -> None:
        self._last_tick = 0
        self._records: dict[str, dict[str, list[tuple[int, dict[str, Any]]]]] = {"raw": {}, "failed": {}}
        self._pending: dict[tuple[str, str, str], deque[asyncio.Future[dict[str, Any]]]] = {}

    def tick(self) -> int:
        ticks = max(time.time_ns() // 100, self._last_tick + 1)
        self._last_tick = ticks
        return ticks

    def record(self, org: str, iccid: str, topic: str, payload: str) -> tuple[int, dict[str, Any]]:
        """A new RawData record for an uplink that arrived now."""
        ticks = self.tick()
        record = {"Timestamp": format_ticks(ticks), "Payload": payload, "ICCID": iccid, "Topic": topic}
        self._add("raw", org, ticks, record)
        # One uplink answers one request; identical uplinks answer their requests in order.
        waiting = self._pending.get((org, topic, payload))
        while waiting:
            fut = waiting.popleft()
            if not fut.done():
                fut.set_result(record)
                break
        if waiting is not None and not waiting:
            del self._pending[(org, topic, payload)]
        return ticks, record

    def fail(self, org: str, ticks: int, record: dict[str, Any]) -> None:
        """The webhook push of this record failed for good: it goes to FailedData."""
        self._add("failed", org, ticks, record)

    def _add(self, kind: str, org: str, ticks: int, record: dict[str, Any]) -> None:
        records = self._records[kind].setdefault(org, [])
        records.append((ticks, record))
        cutoff = ticks - RETENTION_S * TICKS_PER_SECOND
        if records[0][0] < cutoff:
            records[:] = [item for item in records if item[0] >= cutoff]

    def expect(self, org: str, topic: str, payload: str) -> asyncio.Future[dict[str, Any]]:
        """A future for the record of an uplink a device is about to publish."""
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.setdefault((org, topic, payload), deque()).append(fut)
        return fut

    def forget(self, org: str, topic: str, payload: str, fut: asyncio.Future[dict[str, Any]]) -> None:
        waiting = self._pending.get((org, topic, payload))
        if waiting is not None and fut in waiting:
            waiting.remove(fut)
        if waiting is not None and not waiting:
            del self._pending[(org, topic, payload)]

    def window(self, kind: str, org: str, start: int, end: int) -> list[dict[str, Any]]:
        """Records with start <= Timestamp <= end, newest first (the API promises no order)."""
        return [record for ticks, record in reversed(self._records[kind].get(org, ())) if start <= ticks <= end]

    def count(self, kind: str) -> int:
        return sum(len(records) for records in self._records[kind].values())

    def clear(self) -> None:
        for records in self._records.values():
            records.clear()
