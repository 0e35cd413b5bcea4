"""Emulator state shared by the API and control handlers: orgs, devices, SIM state, log, stats."""

from __future__ import annotations

import hmac
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

GENERATED_PREFIX = "89882806660"
VENDOR_EXAMPLE_ICCID = "12345678"
# 1NCE SIMs come with a data volume for their ten-year lifetime; the unit is not documented.
SIM_VOLUME = 500
SIM_LIFETIME_YEARS = 10


def generated_iccids(count: int, prefix: str = GENERATED_PREFIX) -> list[str]:
    """19-digit ICCIDs: prefix + 8-digit zero-padded index from 00000000."""
    width = max(19 - len(prefix), len(str(max(count - 1, 0))))
    return [f"{prefix}{index:0{width}d}" for index in range(count)]


@lru_cache(maxsize=4096)  # devices added together share their dates: formatted once, not per request
def iso_utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(slots=True)
class Device:
    """A SIM's state; devices never touched share no object (10k-device fleets stay cheap)."""

    enabled: bool = True
    connects: int = 1  # the first connection, when the emulator started or the device was added
    ul_message_count: int = 0
    dl_message_count: int = 0
    updated: float | None = None


class Registry:
    """Orgs with their API keys, registered devices and their SIM state."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._devices: dict[str, dict[str, float]] = {}  # org -> {iccid: registration time}
        self._state: dict[tuple[str, str], Device] = {}

    def add_org(self, org: str, api_key: str) -> None:
        self._keys[org] = api_key
        self._devices.setdefault(org, {})

    @property
    def orgs(self) -> list[str]:
        return list(self._keys)

    def authorised(self, org: str, api_key: str | None) -> bool:
        expected = self._keys.get(org)
        if expected is None or api_key is None:
            return False
        return hmac.compare_digest(expected.encode(), api_key.encode())

    def add_devices(self, org: str, iccids: list[str]) -> int:
        devices = self._devices.setdefault(org, {})
        before = len(devices)
        now = time.time()
        for iccid in iccids:
            devices.setdefault(iccid, now)
        return len(devices) - before

    def has_device(self, org: str, iccid: str) -> bool:
        return iccid in self._devices.get(org, ())

    def device_count(self, org: str) -> int:
        return len(self._devices.get(org, ()))

    def iccids(self, org: str) -> list[str]:
        return list(self._devices.get(org, ()))

    # -- SIM state and counters ----------------------------------------------
    def device(self, org: str, iccid: str) -> Device:
        """The device's state, created on first use (the device must be registered)."""
        key = (org, iccid)
        state = self._state.get(key)
        if state is None:
            state = self._state[key] = Device()
        return state

    def peek(self, org: str, iccid: str) -> Device:
        return self._state.get((org, iccid)) or Device()

    def disabled(self) -> list[str]:
        return [f"{org}/{iccid}" for (org, iccid), state in self._state.items() if not state.enabled]

    def enabled(self, org: str, iccid: str) -> bool:
        state = self._state.get((org, iccid))
        return state is None or state.enabled

    def detail(self, org: str, iccid: str) -> dict[str, Any]:
        """`Data` of GET Device/Sim/Detail, as the vendor's (unpublished) page shows it."""
        state = self.peek(org, iccid)
        created = self._devices[org][iccid]
        return {
            "Name": f"Device {iccid[-6:]}",
            "ICCID": iccid,
            "IMEILock": False,
            "ActivationDate": iso_utc(created),
            "ExpiryDate": iso_utc(created + SIM_LIFETIME_YEARS * 365.25 * 86400),
            "Status": 1 if state.enabled else 0,
            "MessageCount": state.ul_message_count,
            "DLMessageCount": state.dl_message_count,
            "Volume": SIM_VOLUME,
            "CreatedDate": iso_utc(created),
            "UpdatedDate": iso_utc(state.updated or created),
        }

    def reset_devices(self) -> None:
        self._state.clear()


@dataclass
class Stats:
    requests: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    by_endpoint: dict[str, Counter[str]] = field(default_factory=dict)
    published: int = 0
    dropped: int = 0
    hung: int = 0
    delivery_failures: int = 0  # downlinks the broker did not take (answered 500)
    uplinks_ignored: int = 0  # uplinks on a topic of no registered device (the broker drops them silently)
    # Epoch seconds of the first and the last API answer: where a client's time goes around its requests.
    first_answer_ts: float | None = None
    last_answer_ts: float | None = None

    def answered(self, endpoint: str, status: int) -> None:
        self.last_answer_ts = time.time()
        if self.first_answer_ts is None:
            self.first_answer_ts = self.last_answer_ts
        self.by_status[str(status)] += 1
        self.by_endpoint.setdefault(endpoint, Counter())[str(status)] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "by_endpoint": {name: dict(counts) for name, counts in self.by_endpoint.items()},
            "published": self.published,
            "dropped": self.dropped,
            "hung": self.hung,
            "delivery_failures": self.delivery_failures,
            "uplinks_ignored": self.uplinks_ignored,
            "first_answer_ts": self.first_answer_ts,
            "last_answer_ts": self.last_answer_ts,
        }


@dataclass
class State:
    registry: Registry = field(default_factory=Registry)
    stats: Stats = field(default_factory=Stats)
    messages: list[dict[str, Any]] = field(default_factory=list)

    def log_message(
        self, org: str, iccid: str, topic: str, message: str, qos: int, fmt: int, retain: bool, mqtt_topic: str
    ) -> None:
        # "topic"/"message" are the request's Topic/Message as sent by the client;
        # "mqtt_topic" is where it was published (payload = message minus CR/LF for Format 0).
        self.messages.append(
            {
                "org": org,
                "iccid": iccid,
                "topic": topic,
                "mqtt_topic": mqtt_topic,
                "message": message,
                "qos": qos,
                "format": fmt,
                "retain": retain,
                "ts": time.time(),
            }
        )

    def reset(self) -> None:
        self.messages.clear()
        self.stats = Stats()
        self.registry.reset_devices()
