"""A small fake of Monoz Link's RawData/FailedData endpoints for the raw_data source's tests.

A real aiohttp server on 127.0.0.1 (a free port), in its own thread and event
loop; stopped when the ``with`` block ends. It answers like API.md says:
401 for a wrong key or org, records whose Timestamp is within [StartTime,
EndTime] (both ends included, compared at 100 ns like the vendor's 7 digits),
newest first (so the client must sort). A script of faults replaces the next
answers: an HTTP status, "drop" (close the connection), "notjson" or "hang".
Every request is logged (path, headers, body).
"""

from __future__ import annotations

import asyncio
import calendar
import json
import re
import threading
import time
from typing import Any

from aiohttp import web

TS_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?Z")


def ticks(text: str) -> int:
    """100 ns ticks since the epoch (the vendor's resolution)."""
    match = TS_RE.fullmatch(text)
    if not match:
        raise ValueError(text)
    seconds = calendar.timegm(tuple(int(match.group(i)) for i in range(1, 7)) + (0, 0, 0))
    return seconds * 10_000_000 + int((match.group(7) or "0").ljust(9, "0")[:7])


def stamp(seconds_ago: float = 0.0, now: float | None = None, extra_ticks: int = 0) -> str:
    """A timestamp in the vendor's form: 7 fractional digits and Z."""
    value = int(((now if now is not None else time.time()) - seconds_ago) * 10_000_000) + extra_ticks
    seconds, fraction = divmod(value, 10_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:07d}Z"


def _sort_key(record: Any) -> int:
    """A record's ticks; a malformed record (kept to test the client) sorts as if it were in every window."""
    try:
        return ticks(record["Timestamp"])
    except (TypeError, KeyError, ValueError):
        return -1 if not isinstance(record, dict) else 0


class FakeApi:
    def __init__(self, org: str, api_key: str, ssl_context: Any = None) -> None:
        self.ssl_context = ssl_context
        self.org = org
        self.api_key = api_key
        self.records: dict[str, list[dict[str, Any]]] = {"RawData": [], "FailedData": []}
        self.script: list[Any] = []
        self.requests: list[dict[str, Any]] = []
        self.changed = threading.Condition()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, daemon=True, name="fake-monoz-api")
        self.started = threading.Event()
        self.port = 0
        self._stop: asyncio.Event | None = None

    # -- server
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._serve())
        self.loop.close()

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/api/v1/{org}/{endpoint}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=self.ssl_context)
        await site.start()
        self.port = runner.addresses[0][1]
        self._stop = asyncio.Event()
        self.started.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        entry = {"path": request.path, "headers": dict(request.headers), "body": body.decode("utf-8", "replace")}
        with self.changed:
            self.requests.append(entry)
            fault = self.script.pop(0) if self.script else None
            self.changed.notify_all()
        if fault == "drop":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if fault == "hang":  # until the client gives up and the fake stops
            assert self._stop is not None
            await self._stop.wait()
        if fault == "notjson":
            return web.Response(text="<html>gateway</html>", content_type="text/html")
        if isinstance(fault, int):
            return web.json_response({"StatusCode": fault, "Message": f"injected {fault}"}, status=fault)
        if request.headers.get("X-API-Key") != self.api_key or request.match_info["org"] != self.org:
            return web.json_response({"StatusCode": 401, "Message": "Unauthorized"}, status=401)
        endpoint = request.match_info["endpoint"]
        if endpoint not in self.records:
            return web.json_response({"StatusCode": 404, "Message": "Not found"}, status=404)
        try:
            query = json.loads(body)
            start, end = ticks(query["StartTime"]), ticks(query["EndTime"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"StatusCode": 400, "Message": "bad StartTime/EndTime"}, status=400)
        with self.changed:
            found = [r for r in self.records[endpoint] if _sort_key(r) <= 0 or start <= _sort_key(r) <= end]
        found.sort(key=_sort_key, reverse=True)
        return web.json_response({"Message": "FetchSuccess", "StatusCode": 200, "Data": found})

    # -- control
    def __enter__(self) -> FakeApi:
        self.thread.start()
        assert self.started.wait(20), "the fake API did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self.thread.join(20)
        assert not self.thread.is_alive()

    @property
    def api_url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://127.0.0.1:{self.port}/api/v1"

    def add(self, timestamp: str, payload: str, iccid: str | None = "8988280666000000001", topic: str | None = None,
            endpoint: str = "RawData", **extra: Any) -> dict[str, Any]:
        record = {"Timestamp": timestamp, "Payload": payload, "ICCID": iccid, "Topic": topic, **extra}
        with self.changed:
            self.records[endpoint].append(record)
        return record

    def add_raw(self, record: Any, endpoint: str = "RawData") -> None:
        with self.changed:
            self.records[endpoint].append(record)

    def fail_next(self, *faults: Any) -> None:
        with self.changed:
            self.script.extend(faults)

    def wait_requests(self, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.requests) >= count, timeout), (
                f"only {len(self.requests)} of {count} requests arrived"
            )
            return list(self.requests)
