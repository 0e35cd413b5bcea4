"""Helpers the emulator's own tests share (plain functions; pytest fixtures live in each test module).

- ``BROKERS``: the brokers the emulator tests run on: the embedded amqtt one
  and mosquitto, or only the embedded one with MONOZ_TEST_BROKER=embedded
  (a machine without mosquitto).
- ``api()`` / ``assert_error()``: calls to the emulated vendor API.
- ``WebhookReceiver``: a small aiohttp server on a thread of the test
  process, standing in for the customer's webhook; started and stopped by
  the test, with blocking waits on what it received.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from monoz_emulator.testing import EmulatorProcess  # noqa: E402

BROKERS = ["embedded"] if os.environ.get("MONOZ_TEST_BROKER") == "embedded" else ["embedded", "mosquitto"]
WIDE_WINDOW = {"StartTime": "2000-01-01T00:00:00Z", "EndTime": "2100-01-01T00:00:00Z"}


def api(emu: EmulatorProcess, method: str, path: str, body: Any = None, key: str | None = None,
        org: str | None = None, raw: bytes | None = None) -> requests.Response:
    """A request to /api/v1/{org}/{path} with the emulator's key (or `key`)."""
    headers = {"X-API-Key": emu.api_key if key is None else key, "Content-Type": "application/json"}
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    return requests.request(method, f"{emu.api_url}/{org or emu.org}/{path}", data=data, headers=headers, timeout=30)


def publish(emu: EmulatorProcess, iccid: str, message: str, topic: str = "", qos: int = 0, retain: bool = False,
            fmt: int = 1) -> None:
    resp = api(emu, "POST", "Publish/Message", {"ICCID": iccid, "Topic": topic, "Message": message, "QoS": qos,
                                                 "Format": fmt, "RetainLastMessage": retain})
    assert resp.status_code == 200, resp.text


def assert_error(resp: requests.Response, status: int, fragment: str = "") -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    data = resp.json()
    assert data["Error"] is True and data["StatusCode"] == status, data
    assert isinstance(data["Message"], str) and data["Message"]
    assert fragment.lower() in data["Message"].lower(), data["Message"]
    return data


def assert_ok(resp: requests.Response, message: str) -> Any:
    assert resp.status_code == 200, resp.text
    data = resp.json()
    assert data["StatusCode"] == 200 and data["Message"] == message and data["Error"] is False, data
    return data.get("Data")


class WebhookReceiver:
    """The customer's webhook: records every POST; answers by a script of behaviours, then 200.

    Behaviours: an int status to answer with, or "hang" (no answer until the
    receiver stops, so the emulator's timeout fires).
    """

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: list[Any] = []
        self.url = ""
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._release: asyncio.Event | None = None
        self._runner: Any = None
        self._ready = threading.Event()

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "the webhook receiver did not start"
        return self

    def _serve(self) -> None:
        from aiohttp import web

        loop = self._loop = asyncio.new_event_loop()
        self._release = asyncio.Event()

        async def handle(request: web.Request) -> web.Response:
            entry = {"headers": dict(request.headers), "body": await request.read(), "path": request.path}
            with self._cond:
                behaviour = self.script.pop(0) if self.script else 200
                entry["answer"] = behaviour
                self.requests.append(entry)
                self._cond.notify_all()
            if behaviour == "hang":
                assert self._release is not None
                await self._release.wait()
                return web.Response(status=200)
            return web.Response(status=int(behaviour), text="{}", content_type="application/json")

        async def start() -> None:
            app = web.Application()
            app.router.add_post("/{tail:.*}", handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self.url = f"http://127.0.0.1:{port}/hook"

        loop.run_until_complete(start())
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._runner.cleanup())
        loop.close()

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._release.set)  # type: ignore[union-attr]
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def wait_requests(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Block until `count` POSTs have arrived (or the timeout); returns all of them."""
        with self._cond:
            self._cond.wait_for(lambda: len(self.requests) >= count, timeout)
            return list(self.requests)

    def packets(self) -> list[dict[str, Any]]:
        """Every packet of every answered-200 POST, in arrival order."""
        with self._cond:
            return self._packets_locked()

    def wait_packets(self, count: int, timeout: float = 30) -> list[dict[str, Any]]:
        """Block until `count` packets were delivered (answered 200), or the timeout; returns them all."""
        return self.wait_for(lambda packets: len(packets) >= count, timeout)

    def wait_for(self, predicate: Any, timeout: float = 30) -> list[dict[str, Any]]:
        """Block until predicate(delivered packets) holds, or the timeout; returns the packets."""
        with self._cond:
            self._cond.wait_for(lambda: predicate(self._packets_locked()), timeout)
            return self._packets_locked()

    def _packets_locked(self) -> list[Any]:
        out: list[Any] = []
        for entry in self.requests:
            if entry["answer"] == 200:
                body = json.loads(entry["body"])
                out.extend(body if isinstance(body, list) else [body])
        return out
