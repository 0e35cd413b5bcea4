"""Fault injection: latency, scripted and random failures, a server-side rate limit.

A fault entry is one of:
  * an int HTTP status (400, 429, 500, 502, 503, 504, ...): answered with the
    usual error body (429 and 503 carry `Retry-After`);
  * "drop": close the TCP connection without any HTTP response;
  * "reset": abort the connection (TCP RST) without any HTTP response;
  * "hang": never answer (until the client gives up or the emulator stops);
  * a dict {"status": 429, "retry_after": 2, "message": "..."}.

Order for every Publish request: per-ICCID script, then the global script
(FIFO, one entry consumed per request), then the random rates. The rate
limit is checked before all of these: it models the API gateway.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

RATE_KEYS = ("500", "502", "503", "504", "429", "drop", "reset", "hang")
CONNECTION_FAULTS = ("drop", "reset", "hang")


class FaultConfigError(ValueError):
    """The fault settings given are not valid."""


@dataclass
class Fault:
    """What to do instead of handling a request normally."""

    action: str  # "status" or one of CONNECTION_FAULTS
    status: int = 0
    retry_after: int | None = None
    message: str | None = None


def parse_entry(entry: Any, default_retry_after: int) -> Fault:
    if isinstance(entry, bool):
        raise FaultConfigError(f"invalid fault entry {entry!r}")
    if isinstance(entry, int):
        return _status_fault(entry, None, None, default_retry_after)
    if isinstance(entry, str):
        if entry in CONNECTION_FAULTS:
            return Fault(action=entry)
        if entry.isdigit():
            return _status_fault(int(entry), None, None, default_retry_after)
        raise FaultConfigError(f"invalid fault entry {entry!r}: use a status code, 'drop', 'reset' or 'hang'")
    if isinstance(entry, dict):
        unknown = set(entry) - {"status", "retry_after", "message"}
        if unknown:
            raise FaultConfigError(f"invalid fault entry keys {sorted(unknown)}")
        status = entry.get("status")
        if isinstance(status, str) and status in CONNECTION_FAULTS:
            return Fault(action=status)
        if isinstance(status, bool) or not isinstance(status, int):
            raise FaultConfigError(f"fault entry {entry!r} needs an int 'status'")
        retry_after = entry.get("retry_after")
        if retry_after is not None and (isinstance(retry_after, bool) or not isinstance(retry_after, int) or retry_after < 0):
            raise FaultConfigError(f"fault entry {entry!r}: retry_after must be an int >= 0")
        message = entry.get("message")
        if message is not None and not isinstance(message, str):
            raise FaultConfigError(f"fault entry {entry!r}: message must be a string")
        return _status_fault(status, retry_after, message, default_retry_after)
    raise FaultConfigError(f"invalid fault entry {entry!r}")


def _status_fault(status: int, retry_after: int | None, message: str | None, default_retry_after: int) -> Fault:
    if not 400 <= status <= 599:
        raise FaultConfigError(f"fault status {status} is not an HTTP error status (400-599)")
    if retry_after is None and status in (429, 503):
        retry_after = default_retry_after
    return Fault(action="status", status=status, retry_after=retry_after, message=message)


@dataclass
class FaultSettings:
    latency_ms: float = 0.0
    rates: dict[str, float] = field(default_factory=dict)
    retry_after: int = 1
    rate_limit: float = 0.0
    seed: int | None = None
    script: list[Any] = field(default_factory=list)
    per_iccid: dict[str, list[Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "latency_ms": self.latency_ms,
            "rates": {key: self.rates.get(key, 0.0) for key in RATE_KEYS},
            "retry_after": self.retry_after,
            "rate_limit": self.rate_limit,
            "seed": self.seed,
            "script": list(self.script),
            "per_iccid": {k: list(v) for k, v in self.per_iccid.items()},
        }


class TokenBucket:
    """`rate` tokens per second, bucket size max(1, rate): at most ~rate requests in any second."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self) -> float:
        """0.0 when a token was taken, else seconds until the next token."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class FaultInjector:
    """Holds the current fault settings and decides each request's fate."""

    def __init__(self, settings: FaultSettings | None = None) -> None:
        self._lock = threading.Lock()
        self.settings = FaultSettings()
        self._rng = random.Random()
        self._bucket: TokenBucket | None = None
        self.apply(settings.as_dict() if settings else {}, replace=True)

    def apply(self, body: dict[str, Any], replace: bool = True) -> FaultSettings:
        """Validate and install settings. replace=False merges into the current ones."""
        if not isinstance(body, dict):
            raise FaultConfigError("fault settings must be a JSON object")
        known = {"latency_ms", "rates", "retry_after", "rate_limit", "seed", "script", "per_iccid"}
        unknown = set(body) - known
        if unknown:
            raise FaultConfigError(f"unknown fault setting(s): {sorted(unknown)}")
        base = FaultSettings() if replace else self.settings
        new = FaultSettings(
            latency_ms=base.latency_ms,
            rates=dict(base.rates),
            retry_after=base.retry_after,
            rate_limit=base.rate_limit,
            seed=base.seed,
            script=list(base.script),
            per_iccid={k: list(v) for k, v in base.per_iccid.items()},
        )
        if "latency_ms" in body:
            new.latency_ms = _number(body["latency_ms"], "latency_ms")
        if "retry_after" in body:
            value = body["retry_after"]
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise FaultConfigError("retry_after must be an int >= 0")
            new.retry_after = value
        if "rate_limit" in body:
            new.rate_limit = _number(body["rate_limit"], "rate_limit")
        if "seed" in body:
            seed = body["seed"]
            if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
                raise FaultConfigError("seed must be an int or null")
            new.seed = seed
        if "rates" in body:
            rates = body["rates"]
            if not isinstance(rates, dict):
                raise FaultConfigError("rates must be an object")
            for key, value in rates.items():
                key = str(key)
                if key not in RATE_KEYS:
                    raise FaultConfigError(f"unknown rate {key!r}; known: {list(RATE_KEYS)}")
                value = _number(value, f"rates.{key}")
                if value > 1:
                    raise FaultConfigError(f"rates.{key} must be between 0 and 1")
                new.rates[key] = value
            if sum(new.rates.values()) > 1.0 + 1e-9:
                raise FaultConfigError("the sum of rates must not exceed 1")
        if "script" in body:
            if not isinstance(body["script"], list):
                raise FaultConfigError("script must be a list")
            new.script = list(body["script"])
        if "per_iccid" in body:
            per = body["per_iccid"]
            if not isinstance(per, dict) or not all(isinstance(v, list) for v in per.values()):
                raise FaultConfigError("per_iccid must map ICCIDs to lists of fault entries")
            new.per_iccid = {str(k): list(v) for k, v in per.items()}
        # Validate every entry now, so a bad one is reported at PUT time.
        for entry in [*new.script, *(e for v in new.per_iccid.values() for e in v)]:
            parse_entry(entry, new.retry_after)
        with self._lock:
            reseed = replace or "seed" in body
            self.settings = new
            if reseed:
                self._rng = random.Random(new.seed)
            if replace or "rate_limit" in body:
                self._bucket = TokenBucket(new.rate_limit) if new.rate_limit > 0 else None
        return new

    def reset(self) -> None:
        self.apply({}, replace=True)

    @property
    def latency_s(self) -> float:
        return self.settings.latency_ms / 1000.0

    def rate_limited(self) -> int | None:
        """None if the request may go on, else the Retry-After seconds for a 429."""
        with self._lock:
            bucket = self._bucket
            if bucket is None:
                return None
            wait = bucket.take()
        if wait <= 0:
            return None
        return max(1, math.ceil(wait))

    def next_fault(self, iccid: str | None) -> Fault | None:
        with self._lock:
            settings = self.settings
            entry: Any = None
            if iccid is not None and settings.per_iccid.get(iccid):
                entry = settings.per_iccid[iccid].pop(0)
            elif settings.script:
                entry = settings.script.pop(0)
            if entry is not None:
                return parse_entry(entry, settings.retry_after)
            if not settings.rates:
                return None
            draw = self._rng.random()
        cumulative = 0.0
        for key in RATE_KEYS:
            cumulative += settings.rates.get(key, 0.0)
            if draw < cumulative:
                return parse_entry(key, settings.retry_after)
        return None


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or not math.isfinite(value):
        raise FaultConfigError(f"{name} must be a number >= 0")
    return float(value)
