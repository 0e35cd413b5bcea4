"""Emulator state shared by the API and control handlers: orgs, devices, log, stats."""

from __future__ import annotations

import hmac
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

GENERATED_PREFIX = "89882806660"
VENDOR_EXAMPLE_ICCID = "12345678"


def generated_iccids(count: int, prefix: str = GENERATED_PREFIX) -> list[str]:
    """19-digit ICCIDs: prefix + 8-digit zero-padded index from 00000000."""
    width = max(19 - len(prefix), len(str(max(count - 1, 0))))
    return [f"{prefix}{index:0{width}d}" for index in range(count)]


class Registry:
    """Orgs with their API keys and registered devices."""

    def __init__(self) -> None:
        self._keys: dict[str, str] = {}
        self._devices: dict[str, set[str]] = {}

    def add_org(self, org: str, api_key: str) -> None:
        self._keys[org] = api_key
        self._devices.setdefault(org, set())

    @property
    def orgs(self) -> list[str]:
        return list(self._keys)

    def authorised(self, org: str, api_key: str | None) -> bool:
        expected = self._keys.get(org)
        if expected is None or api_key is None:
            return False
        return hmac.compare_digest(expected.encode(), api_key.encode())

    def add_devices(self, org: str, iccids: list[str]) -> int:
        devices = self._devices.setdefault(org, set())
        before = len(devices)
        devices.update(iccids)
        return len(devices) - before

    def has_device(self, org: str, iccid: str) -> bool:
        return iccid in self._devices.get(org, ())

    def device_count(self, org: str) -> int:
        return len(self._devices.get(org, ()))


@dataclass
class Stats:
    requests: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    published: int = 0
    dropped: int = 0
    hung: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "by_status": dict(self.by_status),
            "published": self.published,
            "dropped": self.dropped,
            "hung": self.hung,
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
