# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Times for the data reads: ISO 8601 instants, look-backs such as ``4h``, and the API's format.

Private to the monoz.link collection: not a public API, it may change without notice.

An instant is an int of nanoseconds since the Unix epoch (UTC): the API's
timestamps carry 7 fractional digits, more than ``datetime`` holds, and
``newest`` fed back as the next ``start`` must lose nothing.  Python 3.9's
``datetime.fromisoformat`` takes neither ``Z`` nor 7 digits, hence the
parser here.
"""

from __future__ import annotations

import calendar
import re
import time
from datetime import datetime, timedelta, timezone

from ._errors import InputError

NS_PER_SECOND = 1_000_000_000
NS_PER_MS = 1_000_000
LOOK_BACK_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_ISO = re.compile(
    r"(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"(?:[Tt ](?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:[.,](?P<fraction>\d{1,9}))?)?)?"
    r"\s*(?P<zone>[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)
_LOOK_BACK = re.compile(r"(?P<amount>\d{1,9}(?:\.\d{1,9})?)\s*(?P<unit>[smhdw])")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# The last millisecond the API's format can write: later ends are cut to it.
MAX_INSTANT = (calendar.timegm((9999, 12, 31, 23, 59, 59, 0, 0, 0)) * 1000 + 999) * NS_PER_MS


def parse_instant(text: str) -> int | None:
    """Nanoseconds since the epoch for an ISO 8601 date or date-time, or None when it is not one.

    No zone means UTC, the API's zone.
    """
    match = _ISO.fullmatch(text.strip())
    if match is None:
        return None
    parts = match.groupdict()
    try:
        moment = datetime(
            int(parts["year"]), int(parts["month"]), int(parts["day"]),
            int(parts["hour"] or 0), int(parts["minute"] or 0), int(parts["second"] or 0),
        )
    except ValueError:
        return None
    seconds = calendar.timegm(moment.timetuple())
    zone = parts["zone"]
    if zone and zone not in "Zz":
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:] or 0)
        if hours > 23 or minutes > 59:
            return None
        offset = hours * 3600 + minutes * 60
        seconds -= offset if zone[0] == "+" else -offset
    fraction = (parts["fraction"] or "").ljust(9, "0")
    return seconds * NS_PER_SECOND + int(fraction or 0)


def parse_look_back(text: str) -> int | None:
    """Nanoseconds for a look-back such as ``30m``, ``4h``, ``2d``, or None when it is not one."""
    match = _LOOK_BACK.fullmatch(text.strip())
    if match is None:
        return None
    return int(float(match.group("amount")) * LOOK_BACK_UNITS[match.group("unit")] * NS_PER_SECOND)


def now_ns() -> int:
    return time.time_ns()


def resolve_window(start, end, now: int | None = None) -> tuple:
    """``(start_ns, end_ns)`` from the module's options; raise InputError naming the option.

    A look-back counts back from ``end`` (by default now), so ``start: 4h``
    is the four hours up to ``end``.
    """
    if end is None:
        end_ns = now_ns() if now is None else now
    else:
        end_ns = _instant_option("end", end)
        if end_ns < 0:
            raise InputError(f"end must not be before 1970-01-01T00:00:00Z, got {end!r}")
    end_ns = min(end_ns, MAX_INSTANT)
    text = _text_option("start", start)
    look_back = parse_look_back(text)
    if look_back is not None:
        if look_back <= 0:
            raise InputError(f"start must look back more than nothing, got {text!r}")
        start_ns = end_ns - look_back
    else:
        start_ns = parse_instant(text)
        if start_ns is None:
            raise InputError(
                f"start must be an ISO 8601 time (e.g. 2024-03-11T04:19:55Z) or a look-back such as 30m, 4h"
                f" or 2d (units s, m, h, d, w); got {text!r}"
            )
    if start_ns < 0:
        raise InputError(f"start must not be before 1970-01-01T00:00:00Z, got {text!r}")
    if start_ns > end_ns:
        raise InputError(f"start ({format_instant(start_ns)}) is after end ({format_instant(end_ns)})")
    return start_ns, end_ns


def _text_option(name: str, value) -> str:
    if isinstance(value, datetime):
        # An unquoted YAML timestamp arrives as a datetime.
        value = value.isoformat()
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{name} is required: an ISO 8601 time" + (" or a look-back such as 4h" if name == "start" else ""))
    return value


def _instant_option(name: str, value) -> int:
    text = _text_option(name, value)
    instant = parse_instant(text)
    if instant is None:
        raise InputError(f"{name} must be an ISO 8601 time (e.g. 2024-03-11T04:19:55Z), got {text!r}")
    return instant


def format_instant(instant: int, digits: int = 3, round_up: bool = False) -> str:
    """``2024-03-11T04:19:55.580Z``: UTC with ``digits`` fractional digits, cut down (or rounded up)."""
    seconds, nanos = divmod(instant, NS_PER_SECOND)
    unit = 10 ** (9 - digits)
    fraction, rest = divmod(nanos, unit)
    if round_up and rest:
        fraction += 1
        if fraction == 10 ** digits:
            seconds, fraction = seconds + 1, 0
    stamp = (_EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:0{digits}d}Z" if digits else f"{stamp}Z"
