"""Helpers of the Event-Driven Ansible tests: run an event source for real, in a thread.

An event source is ``async def main(queue, args)``. ``SourceRunner`` runs one
in its own event loop on a background thread, the way ansible-rulebook does
(its queue is an ``asyncio.Queue``, bounded to one event by the engine), so a
test talks to the real aiohttp server over 127.0.0.1 with an ordinary
synchronous client and reads the events the source queued. The source is
always cancelled and the thread joined when the ``with`` block ends.

Test modules import from here, not from conftest (pytest imports every
directory's conftest.py as the one module name ``conftest``).
"""

from __future__ import annotations

import asyncio
import datetime
import importlib.util
import ipaddress
import json
import logging
import queue as thread_queue
import re
import socket
import sys
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
SOURCES = REPO_ROOT / "extensions" / "eda" / "plugins" / "event_source"
RULEBOOKS = REPO_ROOT / "extensions" / "eda" / "rulebooks"
EMULATOR_DIR = REPO_ROOT / "emulator"
if str(EMULATOR_DIR) not in sys.path:
    sys.path.insert(0, str(EMULATOR_DIR))

# Distinctive secrets, so a search of every output for them cannot hit anything else.
TOKEN = "eda-T0ken-5ecret-4be1f0c2"
USERNAME = "monoz-pusher"
PASSWORD = "eda-Passw0rd-5ecret-77d1a9"
HEADER_NAME = "X-Monoz-Webhook-Key"
HEADER_VALUE = "eda-Head3r-5ecret-c3e8b1"
API_KEY = "eda-Api-K3y-5ecret-1f2e3d4c"
ORG = "DEMO"
SECRETS = (TOKEN, PASSWORD, HEADER_VALUE, API_KEY)

EVENT_KEYS = {"iccid", "topic", "timestamp", "payload"}
LISTENING_RE = re.compile(r"https?://([0-9.]+):([0-9]+)")
START_TIMEOUT_S = 20


def load_source(name: str) -> ModuleType:
    """The event source file as a module (ansible-rulebook runs it with runpy.run_path: same code)."""
    path = SOURCES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"monoz_eda_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class LogCapture(logging.Handler):
    """Every record of the monoz.link loggers, formatted, for secret scans."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.records_lock = threading.Condition()
        self.ready = threading.Event()
        self.port: int | None = None

    def emit(self, record: logging.LogRecord) -> None:
        with self.records_lock:
            self.records.append(record)
            self.records_lock.notify_all()
        message = record.getMessage()
        if "listening on" in message:
            match = LISTENING_RE.search(message)
            if match:
                self.port = int(match.group(2))
                self.ready.set()

    def text(self) -> str:
        with self.records_lock:
            return "\n".join(record.getMessage() for record in self.records)

    def wait_for(self, fragment: str, count: int = 1, timeout: float = 20) -> list[str]:
        """Until `count` messages contain `fragment`; those messages."""
        def matching() -> list[str]:
            return [m for m in (r.getMessage() for r in self.records) if fragment in m]

        with self.records_lock:
            assert self.records_lock.wait_for(lambda: len(matching()) >= count, timeout), (
                f"fewer than {count} log messages with {fragment!r}:\n" + "\n".join(r.getMessage() for r in self.records)
            )
            return matching()


class SourceRunner:
    """Run ``module.main(queue, args)`` in a thread with a bounded asyncio queue.

    auto_consume: a consumer task moves every event to ``self.events`` at once.
    Without it the queue fills up (the engine's holds one event) and the test
    releases events one by one with ``take``.
    """

    def __init__(self, module: ModuleType, args: dict[str, Any], maxsize: int = 1, auto_consume: bool = True,
                 wait_listening: bool = True) -> None:
        self.module = module
        self.args = args
        self.maxsize = maxsize
        self.auto_consume = auto_consume
        self.wait_listening = wait_listening
        self.events: thread_queue.Queue[dict[str, Any]] = thread_queue.Queue()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="eda-source", daemon=True)
        self.task: asyncio.Task | None = None
        self.queue: asyncio.Queue | None = None
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.logs = LogCapture()
        self._loggers = [logging.getLogger(name) for name in ("monoz.link.webhook", "monoz.link.raw_data")]

    # -- lifecycle
    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._main())
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()
            self.finished.set()
            self.logs.ready.set()  # wake a waiter if the source stopped before listening

    async def _main(self) -> None:
        self.queue = asyncio.Queue(self.maxsize)
        consumer = asyncio.ensure_future(self._consume()) if self.auto_consume else None
        self.task = asyncio.ensure_future(self.module.main(self.queue, self.args))
        try:
            await self.task
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            self.error = exc
        finally:
            if consumer is not None:
                consumer.cancel()

    async def _consume(self) -> None:
        assert self.queue is not None
        while True:
            self.events.put(await self.queue.get())

    def __enter__(self) -> SourceRunner:
        for logger in self._loggers:
            logger.addHandler(self.logs)
            logger.setLevel(logging.DEBUG)
        self.thread.start()
        if self.wait_listening:
            if not self.logs.ready.wait(START_TIMEOUT_S) or self.logs.port is None:
                self.stop()
                raise AssertionError(f"source did not start listening: {self.error!r}\n{self.logs.text()}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if not self.finished.is_set() and self.task is not None:
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(30)
        for logger in self._loggers:
            logger.removeHandler(self.logs)
        assert not self.thread.is_alive(), "the source did not stop"

    def wait_finished(self, timeout: float = START_TIMEOUT_S) -> BaseException | None:
        """For sources expected to stop by themselves (bad arguments): the exception they raised."""
        assert self.finished.wait(timeout), "the source is still running"
        return self.error

    # -- observation
    @property
    def port(self) -> int:
        assert self.logs.port is not None
        return self.logs.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def next_event(self, timeout: float = 10) -> dict[str, Any]:
        return self.events.get(timeout=timeout)

    def drain(self) -> list[dict[str, Any]]:
        """Events already handed over (nothing is waited for)."""
        found = []
        while True:
            try:
                found.append(self.events.get_nowait())
            except thread_queue.Empty:
                return found

    def queued(self) -> int:
        """Events sitting in the asyncio queue, not yet consumed."""
        return self.call(self._qsize)

    async def _qsize(self) -> int:
        assert self.queue is not None
        return self.queue.qsize()

    def take(self, count: int = 1, timeout: float = 10) -> list[dict[str, Any]]:
        """Consume `count` events from the asyncio queue (manual consumption), waiting for each."""
        return [self.call(self._get, timeout=timeout) for _ in range(count)]

    async def _get(self) -> dict[str, Any]:
        assert self.queue is not None
        return await self.queue.get()

    def call(self, coroutine_function: Any, timeout: float = 10) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine_function(), self.loop).result(timeout)


class Harness:
    """One Poller driven poll by poll, with the clock set by the test."""

    def __init__(self, raw_data: Any, args: dict[str, Any], start: str) -> None:
        """start: the first window's start; poll(now=None) uses the real clock."""
        self.raw_data = raw_data
        self.loop = asyncio.new_event_loop()
        self.settings = raw_data.Settings(args)
        self.position = raw_data.Position(raw_data.timestamp_ns(start))
        self.session = self.loop.run_until_complete(self._open())
        self.now = raw_data.timestamp_ns(start)
        self.poller = raw_data.Poller(self.settings, self.session, self.position, now_ns=lambda: self.now)

    async def _open(self) -> Any:
        return self.raw_data.open_session(self.settings)

    def poll(self, now: str | None = None) -> list[dict[str, Any]]:
        self.now = time.time_ns() if now is None else self.raw_data.timestamp_ns(now)
        queue: asyncio.Queue = asyncio.Queue()
        count = self.loop.run_until_complete(self.poller.poll(queue))
        events = [queue.get_nowait() for _ in range(queue.qsize())]
        assert count == len(events)
        for event in events:
            assert_event_well_formed(event)
        return events

    def close(self) -> None:
        self.loop.run_until_complete(self.session.close())
        self.loop.close()


def assert_event_well_formed(event: Any) -> dict[str, Any]:
    """The event contract: {"monoz": {iccid, topic, timestamp, payload[, payload_json]}}, all JSON."""
    assert isinstance(event, dict) and set(event) == {"monoz"}, event
    data = event["monoz"]
    assert isinstance(data, dict)
    assert EVENT_KEYS <= set(data) <= EVENT_KEYS | {"payload_json"}, data
    assert data["iccid"] is None or (isinstance(data["iccid"], str) and data["iccid"].isdigit()), data
    assert data["topic"] is None or isinstance(data["topic"], str), data
    assert data["iccid"] is not None or data["topic"] is not None, data
    assert isinstance(data["timestamp"], str) and isinstance(data["payload"], str), data
    for text in (data["timestamp"], data["payload"], data["topic"] or "", data["iccid"] or ""):
        text.encode("utf-8")  # valid Unicode, so the engine can pass it on
    json.dumps(event, allow_nan=False)
    return data


def assert_no_secret(*texts: Any) -> None:
    for text in texts:
        rendered = text if isinstance(text, str) else repr(text)
        for secret in SECRETS:
            assert secret not in rendered, "a credential leaked"


def free_port() -> int:
    """A port free now (for processes that must be told their port up front)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (cryptography comes with ansible-core)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    certfile, keyfile = directory / "cert.pem", directory / "key.pem"
    certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    keyfile.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    return certfile, keyfile
