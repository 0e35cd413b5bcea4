"""Validation of a Publish/Message request body, as the vendor documents it.

Pure functions, no I/O: `validate_publish()` returns the normalised request
or raises `BadRequest` with a message that names the offending field.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

REQUIRED = ("ICCID", "Topic", "Message", "QoS", "Format")
OPTIONAL = ("RetainLastMessage",)
MAX_MESSAGE_BYTES = 4096
MAX_TOPIC_BYTES = 512
ICCID_RE = re.compile(r"[0-9]{1,22}")  # ITU-T E.118 allows up to 22 digits


class BadRequest(ValueError):
    """400: an input value is not in the correct format."""


@dataclass(frozen=True)
class PublishRequest:
    iccid: str
    topic_suffix: str
    message: str
    qos: int
    format: int
    retain: bool
    mqtt_topic: str
    payload: bytes


def device_topic(org: str, iccid: str) -> str:
    return f"/{org}/{iccid}/sub"


def parse_body(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequest(f"Request body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    if not text.strip():
        raise BadRequest("Request body is empty; expected a JSON object")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError) as exc:
        raise BadRequest(f"Request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequest("Request body is JSON nested too deeply") from None


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN/Infinity; JSON text does not.
    raise ValueError(f"{name} is not valid JSON")


def _utf8_len(value: str, field: str) -> int:
    try:
        return len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise BadRequest(f"{field} is not valid UTF-8 text (lone surrogate)") from None


def _int_choice(body: dict[str, Any], field: str) -> int:
    value = body[field]
    # bool is an int subclass in Python; the API wants the numbers 0 or 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{field} must be an integer 0 or 1, got {type(value).__name__} {json.dumps(value)}")
    if value not in (0, 1):
        raise BadRequest(f"{field} must be 0 or 1, got {value}")
    return value


def validate_publish(org: str, body: Any) -> PublishRequest:
    """Check a decoded body; field order of the checks is fixed for stable messages."""
    if not isinstance(body, dict):
        raise BadRequest(f"Request body must be a JSON object, got {type(body).__name__}")
    unknown = sorted(set(body) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(unknown)}")
    missing = [name for name in REQUIRED if name not in body]
    if missing:
        raise BadRequest(f"Missing required field(s): {', '.join(missing)}")

    iccid = body["ICCID"]
    if not isinstance(iccid, str):
        raise BadRequest(f"ICCID must be a string, got {type(iccid).__name__}")
    if not ICCID_RE.fullmatch(iccid):
        raise BadRequest("ICCID must be 1 to 22 digits")

    topic = body["Topic"]
    if not isinstance(topic, str):
        raise BadRequest(f"Topic must be a string, got {type(topic).__name__}")
    if topic and not topic.startswith("/"):
        raise BadRequest("Topic must be empty or start with '/'")
    for char, name in (("+", "'+'"), ("#", "'#'"), ("\x00", "NUL")):
        if char in topic:
            raise BadRequest(f"Topic must not contain the MQTT wildcard/control character {name}")
    _utf8_len(topic, "Topic")

    message = body["Message"]
    if not isinstance(message, str):
        raise BadRequest(f"Message must be a string, got {type(message).__name__}")

    qos = _int_choice(body, "QoS")
    fmt = _int_choice(body, "Format")

    size = _utf8_len(message, "Message")
    if size < 1:
        raise BadRequest("Message must not be empty")
    if size > MAX_MESSAGE_BYTES:
        raise BadRequest(f"Message is {size} bytes; the limit is {MAX_MESSAGE_BYTES} bytes")
    if fmt == 0:
        try:
            json.loads(message, parse_constant=_reject_constant)
        except (json.JSONDecodeError, ValueError) as exc:
            raise BadRequest(f"Message is not valid JSON text (Format 0): {exc}") from None
        except RecursionError:
            raise BadRequest("Message is JSON nested too deeply (Format 0)") from None

    retain = body.get("RetainLastMessage", False)
    if not isinstance(retain, bool):
        raise BadRequest(f"RetainLastMessage must be a boolean, got {type(retain).__name__}")

    mqtt_topic = device_topic(org, iccid) + topic
    topic_bytes = len(mqtt_topic.encode("utf-8"))
    if topic_bytes > MAX_TOPIC_BYTES:
        raise BadRequest(f"Whole topic {topic_bytes} bytes; the limit is {MAX_TOPIC_BYTES} bytes")

    # Format 0 (JSON): the service strips CR and LF before pushing to the device.
    published = message.replace("\r", "").replace("\n", "") if fmt == 0 else message
    return PublishRequest(
        iccid=iccid,
        topic_suffix=topic,
        message=message,
        qos=qos,
        format=fmt,
        retain=retain,
        mqtt_topic=mqtt_topic,
        payload=published.encode("utf-8"),
    )


def iccid_hint(body: Any) -> str | None:
    """The ICCID of a request, if one can be read, for per-ICCID fault scripts."""
    if isinstance(body, dict) and isinstance(body.get("ICCID"), str):
        return body["ICCID"]
    return None
