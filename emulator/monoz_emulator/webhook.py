"""The webhook integration: Monoz Link pushing device uplinks to the customer's URL.

As the vendor documents it (API.md, "Webhook integration"): a POST with
`Content-Type: application/json` and the configured headers (Basic, Bearer,
an API-key header or any custom one); packets arriving within one second go
together as a JSON array of up to 10 (a single packet goes as an object);
`{"ICCID", "Timestamp", "Payload"}`, or `Topic` instead of `ICCID`. No answer
within the timeout (90 s by default): up to 2 more attempts; an error answer
(not 2xx): no retry. After `block_after` consecutive failed pushes (the vendor:
at least 10 over 10 minutes; the emulator counts failures only) pushes stop
until someone unblocks them, and every packet not delivered goes to
FailedData. Batches go one at a time, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from .uplinks import UplinkStore

LOG = logging.getLogger(__name__)

BATCH_WINDOW_S = 1.0
BATCH_MAX = 10
ATTEMPTS = 3  # the first POST and 2 retries
MASK = "********"
_TOKEN_CHARS = set("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


class WebhookConfigError(ValueError):
    """Webhook settings that cannot work."""


@dataclass
class WebhookSettings:
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    use_topic: bool = False
    timeout: float = 90.0
    block_after: int = 10
    cafile: str | None = None

    def public(self) -> dict[str, Any]:
        return {"url": self.url, "headers": {name: MASK for name in self.headers}, "use_topic": self.use_topic,
                "timeout": self.timeout, "block_after": self.block_after}


def check_url(url: Any) -> str | None:
    if url is None:
        return None
    if not isinstance(url, str):
        raise WebhookConfigError(f"url must be a string or null, got {type(url).__name__}")
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookConfigError(f"url {url!r} is not an http:// or https:// URL with a host")
    return url


def check_headers(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    if not isinstance(headers, dict):
        raise WebhookConfigError("headers must be an object of header name to value")
    for name, value in headers.items():
        if not name or not set(name) <= _TOKEN_CHARS:
            raise WebhookConfigError(f"header name {name!r} is not a valid HTTP header name")
        if not isinstance(value, str) or "\r" in value or "\n" in value:
            raise WebhookConfigError(f"header {name!r}: the value must be a string without CR or LF")
    return dict(headers)


def check_number(value: Any, name: str, minimum: float, integer: bool = False) -> Any:
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or value < minimum:
        raise WebhookConfigError(f"{name} must be {'an integer' if integer else 'a number'} >= {minimum}")
    return value


class WebhookPusher:
    """Queue of packets to push, the batching loop, and the counters the control endpoint shows."""

    def __init__(self, settings: WebhookSettings, uplinks: UplinkStore) -> None:
        self.settings = settings
        self.uplinks = uplinks
        self._queue: asyncio.Queue[tuple[str, int, dict[str, Any]]] = asyncio.Queue()
        self._outstanding = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self.reset_counters()

    def reset_counters(self) -> None:
        self.delivered_packets = 0
        self.delivered_batches = 0
        self.attempts = 0
        self.failures = 0
        self.consecutive_failures = 0
        self.failed_data = 0
        self.blocked = False
        self.last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.settings.public(),
            "delivered_packets": self.delivered_packets,
            "delivered_batches": self.delivered_batches,
            "attempts": self.attempts,
            "failures": self.failures,
            "consecutive_failures": self.consecutive_failures,
            "blocked": self.blocked,
            "failed_data": self.failed_data,
            "pending": self._outstanding,
            "last_error": self.last_error,
        }

    def configure(self, body: Any) -> None:
        """PUT /_emulator/webhook: url, headers, use_topic replaced; timeout, block_after kept unless given."""
        if not isinstance(body, dict):
            raise WebhookConfigError("the body must be a JSON object")
        unknown = sorted(set(body) - {"url", "headers", "use_topic", "timeout", "block_after"})
        if unknown:
            raise WebhookConfigError(f"unknown webhook setting(s): {', '.join(unknown)}")
        url = check_url(body.get("url"))
        headers = check_headers(body.get("headers"))
        use_topic = body.get("use_topic", False)
        if not isinstance(use_topic, bool):
            raise WebhookConfigError("use_topic must be a boolean")
        timeout = check_number(body.get("timeout", self.settings.timeout), "timeout", 0.001)
        block_after = check_number(body.get("block_after", self.settings.block_after), "block_after", 1, integer=True)
        s = self.settings
        s.url, s.headers, s.use_topic, s.timeout, s.block_after = url, headers, use_topic, float(timeout), block_after

    # -- lifecycle -------------------------------------------------------------
    async def start(self) -> None:
        context = ssl.create_default_context(cafile=self.settings.cafile) if self.settings.cafile else None
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context if context else True))
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    # -- packets ---------------------------------------------------------------
    def push(self, org: str, ticks: int, record: dict[str, Any]) -> None:
        """A new uplink: queue it for the webhook (nothing happens without a URL)."""
        if self.settings.url is None:
            return
        if self.blocked:
            self._fail(org, ticks, record)
            return
        self._outstanding += 1
        self._idle.clear()
        self._queue.put_nowait((org, ticks, record))

    def clear(self) -> None:
        """The emulator's reset: queued packets and counters go, the settings stay."""
        while not self._queue.empty():
            self._queue.get_nowait()
            self._outstanding -= 1
        if self._outstanding == 0:
            self._idle.set()
        self.reset_counters()

    def unblock(self) -> None:
        self.blocked = False
        self.consecutive_failures = 0

    async def wait_idle(self, timeout: float) -> bool:
        """Until no packet is queued or being pushed (or the timeout); True when idle."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        return True

    def _fail(self, org: str, ticks: int, record: dict[str, Any]) -> None:
        self.uplinks.fail(org, ticks, record)
        self.failed_data += 1

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            closes = loop.time() + BATCH_WINDOW_S
            while len(batch) < BATCH_MAX:
                remaining = closes - loop.time()
                if remaining <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), remaining))
                except asyncio.TimeoutError:
                    break
            try:
                await self._deliver(batch)
            except Exception:  # noqa: BLE001 - one bad push must not end the pushing
                LOG.exception("webhook push failed")
                for org, ticks, record in batch:
                    self._fail(org, ticks, record)
            self._outstanding -= len(batch)
            if self._outstanding == 0:
                self._idle.set()

    def _packet(self, record: dict[str, Any]) -> dict[str, Any]:
        key, value = ("Topic", record["Topic"]) if self.settings.use_topic else ("ICCID", record["ICCID"])
        return {key: value, "Timestamp": record["Timestamp"], "Payload": record["Payload"]}

    async def _deliver(self, batch: list[tuple[str, int, dict[str, Any]]]) -> None:
        settings = self.settings
        if settings.url is None or self.blocked:
            for org, ticks, record in batch:
                if settings.url is not None:
                    self._fail(org, ticks, record)
            return
        packets = [self._packet(record) for _org, _ticks, record in batch]
        body = json.dumps(packets[0] if len(packets) == 1 else packets).encode()
        headers = {**settings.headers, "Content-Type": "application/json"}
        assert self._session is not None
        delivered = False
        for _attempt in range(ATTEMPTS):
            self.attempts += 1
            try:
                async with self._session.post(settings.url, data=body, headers=headers,
                                              timeout=aiohttp.ClientTimeout(total=settings.timeout)) as resp:
                    await resp.read()
                    status = resp.status
            except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
                self.last_error = f"no answer: {type(exc).__name__} {exc}".strip()
                continue  # no answer: try again
            if 200 <= status < 300:
                delivered = True
            else:
                self.last_error = f"HTTP {status}"  # an error answer is not retried
            break
        if delivered:
            self.delivered_packets += len(batch)
            self.delivered_batches += 1
            self.consecutive_failures = 0
            return
        self.failures += 1
        self.consecutive_failures += 1
        for org, ticks, record in batch:
            self._fail(org, ticks, record)
        if self.consecutive_failures >= settings.block_after:
            self.blocked = True
            LOG.warning("webhook blocked after %d consecutive failures", self.consecutive_failures)
            while not self._queue.empty():
                org, ticks, record = self._queue.get_nowait()
                self._outstanding -= 1
                self._fail(org, ticks, record)
