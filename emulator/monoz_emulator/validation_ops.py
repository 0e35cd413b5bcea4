"""Validation of the SIM and data endpoints' input (path ICCID, Sim/Enable, Sim/Reset, RawData windows).

Pure functions, no I/O; they raise `BadRequest` with a message that names
the field, like validation.py does for Publish/Message.
"""

from __future__ import annotations

import calendar
import re
from typing import Any

from .uplinks import TICKS_PER_SECOND
from .validation import ICCID_RE, BadRequest

ISO_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?", re.IGNORECASE
)


def check_fields(body: Any, required: tuple[str, ...]) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest(f"Request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(required))
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}")
    missing = [name for name in required if name not in body]
    if missing:
        raise BadRequest(f"Missing required field(s): {', '.join(missing)}")
    return body


def check_iccid(value: Any, where: str = "ICCID") -> str:
    if not isinstance(value, str):
        raise BadRequest(f"{where} must be a string, got {type(value).__name__}")
    if not ICCID_RE.fullmatch(value):
        raise BadRequest(f"{where} must be 1 to 22 digits")
    return value


def sim_enable(body: Any) -> tuple[str, bool]:
    """PUT Sim/Enable: {"ICCID": str, "Enable": bool}."""
    check_fields(body, ("ICCID", "Enable"))
    iccid = check_iccid(body["ICCID"])
    enable = body["Enable"]
    if not isinstance(enable, bool):
        raise BadRequest(f"Enable must be a boolean, got {type(enable).__name__}")
    return iccid, enable


def sim_reset(body: Any) -> str:
    """PUT Sim/Reset: {"ICCID": str}."""
    check_fields(body, ("ICCID",))
    return check_iccid(body["ICCID"])


def parse_time(value: Any, field: str) -> int:
    """ISO 8601 date and time -> 100 ns ticks since the epoch (no offset = UTC)."""
    if not isinstance(value, str):
        raise BadRequest(f"{field} must be an ISO 8601 string, got {type(value).__name__}")
    match = ISO_RE.fullmatch(value.strip())
    if not match:
        raise BadRequest(f"{field} {value!r} is not an ISO 8601 date and time such as 2024-03-11T07:26:54.441Z")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, offset = match.group(7) or "", match.group(8) or "Z"
    if not (1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1] and hour < 24
            and minute < 60 and second < 60):
        raise BadRequest(f"{field} {value!r} is not a valid date and time")
    seconds = calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))
    if offset.upper() != "Z":
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:])
        if hours > 23 or minutes > 59:
            raise BadRequest(f"{field} {value!r} has an invalid UTC offset")
        seconds -= sign * (hours * 3600 + minutes * 60)
    return seconds * TICKS_PER_SECOND + int((fraction + "0000000")[:7])


def data_window(body: Any) -> tuple[int, int]:
    """RawData / FailedData: {"StartTime", "EndTime"}, start not after end."""
    check_fields(body, ("StartTime", "EndTime"))
    start = parse_time(body["StartTime"], "StartTime")
    end = parse_time(body["EndTime"], "EndTime")
    if start > end:
        raise BadRequest("StartTime is after EndTime")
    return start, end
