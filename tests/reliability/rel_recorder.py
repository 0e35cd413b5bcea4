"""A recording reverse proxy: every request the module sends, as the wire saw it, in front of the emulator.

    with RecordingProxy(emu.process.api_url) as proxy:
        ... point api_url at proxy.api_url ...
        proxy.records   # [Record(method, path, iccid, status), ...]

An independent witness of what the module sent (which ICCIDs got a PUT, how
often), where the emulator only keeps per-endpoint counts.  It forwards
method, path, body and the API headers to the emulator over a pooled
session and answers with the emulator's status, body and Retry-After.  When
the emulator gives no answer (an injected "drop"), the proxy records
``status=None`` and aborts the client's connection, so the module sees the
same fault it would have seen without the proxy.

An aiohttp server on its own event loop in a daemon thread, bound to
127.0.0.1:0; ``stop()`` (called by ``__exit__``) closes it and joins the thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

FORWARDED_HEADERS = ("X-API-Key", "Content-Type", "Accept")
START_TIMEOUT_S = 30


@dataclass(frozen=True)
class Record:
    method: str
    path: str
    iccid: str | None
    status: int | None
    body: Any = None


class RecordingProxy:
    def __init__(self, api_url: str) -> None:
        # api_url is http://host:port/api/v1; the proxy keeps the path.
        host_port, _slash, path = api_url.partition("//")[2].partition("/")
        self._upstream = f"http://{host_port}"
        self._prefix = "/" + path
        self.records: list[Record] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stopped: asyncio.Event | None = None
        self._port = 0
        self._error: BaseException | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}{self._prefix}"

    def start(self) -> RecordingProxy:
        self._thread = threading.Thread(target=self._run, name="recording-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S) or self._error is not None:
            raise RuntimeError(f"the recording proxy did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(START_TIMEOUT_S)

    def __enter__(self) -> RecordingProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> list[Record]:
        with self._lock:
            return list(self.records)

    def clear(self) -> None:
        with self._lock:
            self.records.clear()

    # -- the server, on its own loop --------------------------------------------
    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stopped = asyncio.Event()
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256),
                                        timeout=aiohttp.ClientTimeout(total=120))
        # aiohttp silently sends a GET again when the server drops it (RFC 9112
        # 9.3.1.1); the proxy must pass the drop on instead, or it hides a fault.
        # No public switch exists: the attribute is private (aiohttp >= 3.10).
        session._retry_connection = False  # pylint: disable=protected-access
        app = web.Application(client_max_size=1024 ** 2)

        async def forward(request: web.Request) -> web.StreamResponse:
            return await self._forward(session, request)

        app.router.add_route("*", "/{tail:.*}", forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._port = site._server.sockets[0].getsockname()[1]  # pylint: disable=protected-access
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await runner.cleanup()
            await session.close()

    async def _forward(self, session: aiohttp.ClientSession, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        headers = {name: request.headers[name] for name in FORWARDED_HEADERS if name in request.headers}
        parsed = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        iccid = request.match_info["tail"].rsplit("/", 1)[-1] if request.method == "GET" else None
        if isinstance(parsed, dict) and isinstance(parsed.get("ICCID"), str):
            iccid = parsed["ICCID"]
        try:
            async with session.request(request.method, f"{self._upstream}{request.path_qs}", data=body or None,
                                       headers=headers, allow_redirects=False) as upstream:
                content = await upstream.read()
                status = upstream.status
                answer_headers = {name: upstream.headers[name] for name in ("Content-Type", "Retry-After")
                                  if name in upstream.headers}
        except (aiohttp.ClientError, asyncio.TimeoutError):
            self._record(Record(request.method, request.path, iccid, None, parsed))
            # The emulator dropped the connection: so does the proxy.
            if request.transport is not None:
                request.transport.abort()
            # Never written: the connection is gone.
            return web.Response(status=599)
        self._record(Record(request.method, request.path, iccid, status, parsed))
        return web.Response(status=status, body=content, headers=answer_headers)

    def _record(self, record: Record) -> None:
        with self._lock:
            self.records.append(record)
