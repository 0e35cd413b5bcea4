# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""monoz.link.raw_data: poll Monoz Link's uplink history (RawData or FailedData) as events.

ansible-rulebook loads an event source with runpy.run_path, so this file
cannot import the collection's module_utils: it is self-contained, and
repeats the few lines of webhook.py that build an event from a packet.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import json
import logging
import os
import re
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from typing import Any, Callable
from urllib.parse import quote

import aiohttp

DOCUMENTATION = r"""
---
short_description: Poll Monoz Link's uplink history (RawData or FailedData) for device uplinks.
description:
  - An ansible-rulebook event source that polls Monoz Link's C(RawData) endpoint (or C(FailedData),
    the uplinks its webhook or cloud integration failed to deliver) every O(interval) and emits one event
    per uplink, oldest first.
  - "Each event is C({"monoz": {"iccid", "topic", "timestamp", "payload", "payload_json"}}), the same shape
    as the monoz.link.webhook source: C(iccid) is the record's ICCID, or read from C(topic) when the record
    has none; C(payload_json) is the payload parsed as JSON, present only when the payload is valid JSON
    (strict: no C(NaN), no number too large for a float, at most 64 levels of nesting)."
  - The first poll happens when the source starts and covers the last O(lookback). Each later window starts
    at the newest C(Timestamp) already fetched, as the vendor advises because its store may lag, and ends now.
    Windows include both ends, so records at the boundary come back again; they are recognised and
    never emitted twice.
  - With O(checkpoint), the position (newest timestamp and the records seen at it) is kept in a file,
    written atomically after every poll, so a restarted rulebook resumes where it stopped instead of
    replaying or missing uplinks (up to the API's retention of 1 to 3 days).
  - A failed poll (wrong key, server error, timeout, connection refused, unreadable answer) is logged,
    without the API key, and the same window is asked again at the next interval; the source never stops on it.
  - Records the API returns malformed (no Timestamp, Payload not a string, neither ICCID nor Topic) are
    skipped with a warning, never emitted.
  - The RawData and FailedData endpoints exist only for organisations with the database feature.
options:
  org_id:
    description:
      - The organisation's ID in Monoz Link. If not set, the E(MONOZ_ORG_ID) environment variable is used.
    type: str
    required: true
  api_key:
    description:
      - The Monoz Link API key, sent in the C(X-API-Key) header. If not set, the E(MONOZ_API_KEY) environment
        variable is used. It never appears in events or logs.
    type: str
    required: true
  api_url:
    description:
      - Base URL of the API. If not set, the E(MONOZ_API_URL) environment variable is used, and without it
        the vendor's URL. Redirects are not followed, so the key only ever goes to this URL.
    type: str
    default: https://link.monoz.io/api/v1
  kind:
    description:
      - C(raw) polls C(POST {api_url}/{org_id}/RawData), C(failed) polls C(FailedData).
    type: str
    choices: [raw, failed]
    default: raw
  interval:
    description:
      - Time between two polls, in seconds or with a unit (C(90s), C(30m), C(4h), C(1d)).
        The vendor recommends polling every 4 to 24 hours.
    type: str
    default: "14400"
  lookback:
    description:
      - How far back the first window reaches when there is no checkpoint, in seconds or with a unit.
        Defaults to O(interval). The API keeps data 1 to 3 days.
    type: str
  checkpoint:
    description:
      - Path of a JSON file that keeps the position between runs. It is created when missing, and must
        belong to the same O(org_id) and O(kind). It holds timestamps and digests, no payload or key.
    type: path
  timeout:
    description:
      - Seconds to wait for each poll's answer.
    type: float
    default: 30
  validate_certs:
    description:
      - Whether to verify the API's TLS certificate.
    type: bool
    default: true
notes:
  - Requires the Python library aiohttp.
"""

EXAMPLES = r"""
- name: Uplinks the webhook could not deliver
  hosts: localhost
  sources:
    - monoz.link.raw_data:
        kind: failed
        interval: 4h
        lookback: 3d
        checkpoint: /var/lib/eda/monoz-failed.json
  rules:
    - name: Print every recovered uplink
      condition: event.monoz is defined
      action:
        print_event:
          pretty: true
"""

logger = logging.getLogger("monoz.link.raw_data")

DEFAULT_API_URL = "https://link.monoz.io/api/v1"
ENDPOINTS = {"raw": "RawData", "failed": "FailedData"}
ARGUMENTS = frozenset((
    "org_id", "api_key", "api_url", "kind", "interval", "lookback", "checkpoint", "timeout", "validate_certs",
))
CHECKPOINT_VERSION = 1
ICCID_RE = re.compile(r"[0-9]{1,22}")
TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
DURATION_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)")
UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
NS = 1_000_000_000
MAX_JSON_DEPTH = 64


class RawDataArgumentError(ValueError):
    """A source argument or the checkpoint file is missing, wrong, or conflicts with another."""


class PollError(RuntimeError):
    """One poll failed; the source logs it and asks the same window again next time."""


# -- events (as in webhook.py) -----------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _nesting_within(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return False
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return True


def parse_payload_json(payload: str) -> tuple[bool, Any]:
    """(True, value) when the payload is JSON the engine can take on: strict JSON, valid Unicode, sane nesting."""
    try:
        value = json.loads(payload, parse_constant=_reject_constant)
        json.dumps(value, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (ValueError, RecursionError, UnicodeEncodeError):
        return False, None
    if not _nesting_within(value, MAX_JSON_DEPTH):
        return False, None
    return True, value


def iccid_from_topic(topic: str) -> str | None:
    """The ICCID in an uplink topic ``<level1>/<org>/<iccid>/<level4>`` (levels 1 and 4 optional)."""
    levels = topic.split("/")
    for index in (1, 2):
        if index < len(levels) and levels[index - 1] and ICCID_RE.fullmatch(levels[index]):
            return levels[index]
    return None


def packet_event(iccid: str | None, topic: str | None, timestamp: str, payload: str) -> dict[str, Any]:
    if iccid is None and topic is not None:
        iccid = iccid_from_topic(topic)
    data: dict[str, Any] = {"iccid": iccid, "topic": topic, "timestamp": timestamp, "payload": payload}
    parsed, value = parse_payload_json(payload)
    if parsed:
        data["payload_json"] = value
    return {"monoz": data}


# -- time --------------------------------------------------------------------------------------


def timestamp_ns(text: str) -> int:
    """Nanoseconds since the epoch, exact to the API's 7 fractional digits (datetime keeps only 6)."""
    match = TIMESTAMP_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"not an ISO 8601 timestamp: {text[:40]!r}")
    year, month, day, hour, minute, second = (int(match.group(i)) for i in range(1, 7))
    fraction = int((match.group(7) or "0").ljust(9, "0"))
    zone = match.group(8)
    offset = 0
    if zone and zone != "Z":
        sign = -1 if zone[0] == "-" else 1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    try:
        seconds = calendar.timegm(datetime(year, month, day, hour, minute, second).timetuple())
    except (ValueError, OverflowError):
        raise ValueError(f"not a valid date and time: {text[:40]!r}") from None
    return (seconds - offset) * NS + fraction


def format_ns(value: int) -> str:
    """ISO 8601 UTC with 7 fractional digits and Z, the API's own form."""
    seconds, fraction = divmod(value, NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction // 100:07d}Z"


def parse_duration(value: Any, name: str) -> float:
    if isinstance(value, bool):
        raise RawDataArgumentError(f"monoz.link.raw_data: {name} must be seconds or a duration such as 4h")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = DURATION_RE.fullmatch(str(value).strip().lower())
        if not match:
            raise RawDataArgumentError(
                f"monoz.link.raw_data: {name} must be seconds or a duration such as 90s, 30m, 4h or 1d, got {value!r}"
            )
        seconds = float(match.group(1)) * UNITS[match.group(2)]
    if not 0.01 <= seconds <= 366 * 86400:
        raise RawDataArgumentError(f"monoz.link.raw_data: {name} must be from 0.01 s to 366 days")
    return seconds


# -- arguments ---------------------------------------------------------------------------------


def _str_arg(args: dict[str, Any], name: str, env: str | None = None, default: str | None = None) -> str | None:
    value = args.get(name)
    if value is None and env:
        value = os.environ.get(env) or None
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        raise RawDataArgumentError(f"monoz.link.raw_data: {name} must be a non-empty string")
    return value


def _bool_arg(args: dict[str, Any], name: str, default: bool) -> bool:
    value = args.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise RawDataArgumentError(f"monoz.link.raw_data: {name} must be a boolean")


class Settings:
    """Validated arguments. The key is kept out of repr() and every message."""

    def __init__(self, args: dict[str, Any]) -> None:
        unknown = sorted(str(key) for key in args if key not in ARGUMENTS and not str(key).startswith("eda_"))
        if unknown:
            raise RawDataArgumentError(
                f"monoz.link.raw_data: unknown argument(s) {', '.join(unknown)}; known: {', '.join(sorted(ARGUMENTS))}"
            )
        self.org_id = _str_arg(args, "org_id", "MONOZ_ORG_ID")
        self.api_key = _str_arg(args, "api_key", "MONOZ_API_KEY")
        missing = [name for name, value in (("org_id", self.org_id), ("api_key", self.api_key)) if value is None]
        if missing:
            raise RawDataArgumentError(
                "monoz.link.raw_data: missing " + " and ".join(
                    f"{name} (or the MONOZ_{name.upper()} environment variable)" for name in missing
                )
            )
        self.api_url = (_str_arg(args, "api_url", "MONOZ_API_URL", DEFAULT_API_URL) or DEFAULT_API_URL).rstrip("/")
        if not self.api_url.startswith(("http://", "https://")):
            raise RawDataArgumentError("monoz.link.raw_data: api_url must start with http:// or https://")
        self.kind = _str_arg(args, "kind", default="raw")
        if self.kind not in ENDPOINTS:
            raise RawDataArgumentError(f"monoz.link.raw_data: kind must be raw or failed, got {self.kind!r}")
        self.interval = parse_duration(args.get("interval", 14400), "interval")
        lookback = args.get("lookback")
        self.lookback = self.interval if lookback is None else parse_duration(lookback, "lookback")
        self.checkpoint = _str_arg(args, "checkpoint")
        if self.checkpoint is not None:
            self.checkpoint = os.path.abspath(os.path.expanduser(self.checkpoint))
        timeout = args.get("timeout", 30)
        try:
            if isinstance(timeout, bool):
                raise ValueError
            self.timeout = float(timeout)
        except (TypeError, ValueError):
            self.timeout = -1.0
        if not 0 < self.timeout <= 3600:
            raise RawDataArgumentError("monoz.link.raw_data: timeout must be a number of seconds above 0, at most 3600")
        self.validate_certs = _bool_arg(args, "validate_certs", True)
        self.url = f"{self.api_url}/{quote(self.org_id, safe='')}/{ENDPOINTS[self.kind]}"

    def __repr__(self) -> str:
        return f"<monoz.link.raw_data settings {self.url}>"

    def scrub(self, text: str) -> str:
        """The text with the key masked, for anything that goes to a log."""
        return text.replace(self.api_key, "********") if self.api_key else text


# -- position ----------------------------------------------------------------------------------


def record_digest(ts: int, iccid: str | None, topic: str | None, payload: str) -> str:
    return hashlib.sha256(json.dumps([ts, iccid, topic, payload], ensure_ascii=False).encode("utf-8", "surrogatepass")).hexdigest()


class Position:
    """The newest timestamp emitted and how many times each record was emitted at exactly that timestamp."""

    def __init__(self, cursor: int, boundary: Counter | None = None) -> None:
        self.cursor = cursor
        self.boundary: Counter = boundary if boundary is not None else Counter()

    def to_json(self, settings: Settings) -> dict[str, Any]:
        return {
            "version": CHECKPOINT_VERSION, "org_id": settings.org_id, "kind": settings.kind,
            "cursor": format_ns(self.cursor), "cursor_ns": self.cursor, "boundary": dict(self.boundary),
        }

    @classmethod
    def load(cls, settings: Settings) -> Position | None:
        path = settings.checkpoint
        if path is None or not os.path.exists(path):
            return None
        where = f"monoz.link.raw_data: checkpoint {path}"
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (OSError, ValueError) as exc:
            raise RawDataArgumentError(f"{where} cannot be read: {getattr(exc, 'strerror', None) or exc}") from None
        if not isinstance(data, dict) or data.get("version") != CHECKPOINT_VERSION:
            raise RawDataArgumentError(f"{where} is not a checkpoint of this source (version {CHECKPOINT_VERSION})")
        if data.get("org_id") != settings.org_id or data.get("kind") != settings.kind:
            raise RawDataArgumentError(
                f"{where} belongs to org_id {data.get('org_id')!r} kind {data.get('kind')!r}, "
                f"not {settings.org_id!r} {settings.kind!r}; give each source its own checkpoint"
            )
        cursor, boundary = data.get("cursor_ns"), data.get("boundary")
        if (not isinstance(cursor, int) or isinstance(cursor, bool) or not isinstance(boundary, dict)
                or not all(isinstance(k, str) and isinstance(v, int) and v > 0 for k, v in boundary.items())):
            raise RawDataArgumentError(f"{where} is damaged (cursor_ns or boundary)")
        return cls(cursor, Counter(boundary))

    def save(self, settings: Settings) -> None:
        """Atomically: a temporary file in the same directory, flushed to disk, then renamed over."""
        path = settings.checkpoint
        if path is None:
            return
        directory = os.path.dirname(path) or "."
        fd, temporary = tempfile.mkstemp(prefix=".monoz-checkpoint-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(self.to_json(settings), handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise


# -- polling -----------------------------------------------------------------------------------


def _records(document: Any) -> tuple[list[tuple[int, dict[str, Any], str]], int]:
    """[(timestamp ns, event, digest)] oldest first, and how many records were malformed."""
    if not isinstance(document, dict) or not isinstance(document.get("Data"), list):
        raise PollError("the answer has no Data list")
    records, malformed = [], 0
    for record in document["Data"]:
        try:
            if not isinstance(record, dict):
                raise ValueError
            timestamp, payload = record.get("Timestamp"), record.get("Payload")
            iccid, topic = record.get("ICCID"), record.get("Topic")
            if not isinstance(timestamp, str) or not isinstance(payload, str):
                raise ValueError
            if not (iccid is None or isinstance(iccid, str)) or not (topic is None or isinstance(topic, str)):
                raise ValueError
            if iccid is None and topic is None:
                raise ValueError
            for text in (timestamp, payload, iccid or "", topic or ""):
                text.encode("utf-8")
            ts = timestamp_ns(timestamp)
        except (ValueError, UnicodeEncodeError):
            malformed += 1
            continue
        records.append((ts, packet_event(iccid, topic, timestamp, payload), record_digest(ts, iccid, topic, payload)))
    records.sort(key=lambda item: item[0])
    return records, malformed


class Poller:
    def __init__(self, settings: Settings, session: aiohttp.ClientSession, position: Position,
                 now_ns: Callable[[], int] = time.time_ns) -> None:
        self.settings = settings
        self.session = session
        self.position = position
        self.now_ns = now_ns
        self.polls = 0

    async def fetch(self, start: int, end: int) -> Any:
        settings = self.settings
        body = {"StartTime": format_ns(start), "EndTime": format_ns(end)}
        try:
            async with self.session.post(
                settings.url, json=body, allow_redirects=False, ssl=settings.validate_certs,
                timeout=aiohttp.ClientTimeout(total=settings.timeout),
            ) as response:
                text = await response.text(errors="replace")
                status = response.status
        except asyncio.TimeoutError:
            raise PollError(f"no answer within {settings.timeout:g} s") from None
        except aiohttp.ClientError as exc:
            raise PollError(f"{type(exc).__name__}: {exc}") from None
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if status != 200:
            message = document.get("Message") if isinstance(document, dict) else None
            hint = " (check org_id and api_key)" if status == 401 else ""
            raise PollError(f"HTTP {status}{hint}: {message if isinstance(message, str) else text[:200]}")
        if document is None:
            raise PollError("the answer is not JSON")
        return document

    async def poll(self, queue: asyncio.Queue) -> int:
        """One window [cursor, now]: emit what was not emitted yet; returns how many events."""
        position = self.position
        start, end = position.cursor, self.now_ns()
        document = await self.fetch(start, max(end, start))
        self.polls += 1
        records, malformed = _records(document)
        if malformed:
            logger.warning("monoz.link.raw_data: skipped %d malformed record(s) from %s", malformed, ENDPOINTS[self.settings.kind])
        # Records at the window's start were emitted by an earlier poll as often as the boundary counts say.
        seen = Counter(position.boundary)
        emitted = 0
        for ts, event, digest in records:
            if ts < start:
                continue
            if ts == start and seen[digest] > 0:
                seen[digest] -= 1
                continue
            await queue.put(event)
            emitted += 1
            # the position moves with every event, so a stop half-way through a window loses nothing
            if ts > position.cursor:
                position.cursor = ts
                position.boundary = Counter()
            position.boundary[digest] += 1
        return emitted


def open_session(settings: Settings) -> aiohttp.ClientSession:
    headers = {"X-API-Key": settings.api_key, "Content-Type": "application/json", "Accept": "application/json"}
    return aiohttp.ClientSession(headers=headers)


def _save(position: Position, settings: Settings) -> None:
    try:
        position.save(settings)
    except OSError as exc:
        logger.error("monoz.link.raw_data: cannot write checkpoint %s: %s", settings.checkpoint, exc.strerror or exc)


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """Poll every interval until the rulebook stops the source."""
    settings = Settings(args)
    position = Position.load(settings)
    if position is None:
        position = Position(time.time_ns() - int(settings.lookback * NS))
    else:
        logger.info("monoz.link.raw_data: resuming from checkpoint at %s", format_ns(position.cursor))
    async with open_session(settings) as session:
        poller = Poller(settings, session, position)
        try:
            while True:
                try:
                    emitted = await poller.poll(queue)
                    logger.info("monoz.link.raw_data: %s: %d new record(s), next window from %s",
                                ENDPOINTS[settings.kind], emitted, format_ns(position.cursor))
                except PollError as exc:
                    logger.error("monoz.link.raw_data: polling %s failed, trying again in %g s: %s",
                                 settings.url, settings.interval, settings.scrub(str(exc)))
                _save(position, settings)
                await asyncio.sleep(settings.interval)
        finally:
            _save(position, settings)


if __name__ == "__main__":
    # Try it without a rulebook: MONOZ_ORG_ID=... MONOZ_API_KEY=... python raw_data.py '{"interval": 60}';
    # every event is printed as one JSON line.

    class MockQueue(asyncio.Queue):
        async def put(self, item: Any) -> None:
            print(json.dumps(item), flush=True)  # noqa: T201

    logging.basicConfig(level=logging.INFO)
    try:
        asyncio.run(main(MockQueue(), json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}))
    except ValueError as exc:
        sys.exit(str(exc))
    except KeyboardInterrupt:
        pass
