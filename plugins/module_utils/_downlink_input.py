# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validation of downlink input and construction of request bodies.

Private to the monoz.link collection: not a public API, it may change without notice.

One job: turn module options (and each element of ``devices``) into the exact
request bodies of the Publish/Message API, or raise ``DownlinkInputError``
naming the option and the problem.  Nothing here touches the network, so all
input can be checked before the first request is sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from ansible.module_utils.parsing.convert_bool import boolean

from ._errors import InputError
from ._targets import device_elements, normalise_iccid
from ._targets import describe_type as _describe_type

MAX_MESSAGE_BYTES = 4096
MAX_TOPIC_BYTES = 512
FORMAT_CODES = {"json": 0, "text": 1}
QOS_CHOICES = (0, 1)
# Keys a dict element of ``devices`` may carry; anything else is a typo that
# would otherwise be silently ignored (``paylod`` would send the task default).
DEVICE_KEYS = ("iccid", "payload", "topic", "qos", "format", "retain")
# MQTT forbids wildcards in a PUBLISH topic (MQTT 3.1.1, 4.7.1) and NUL
# anywhere in a topic; the broker would drop such a publish after the API
# said "MessagePublished", so it is refused before sending.
FORBIDDEN_TOPIC_CHARS = {"+": "MQTT wildcard '+'", "#": "MQTT wildcard '#'", "\x00": "NUL character"}


# The name from when only downlinks were validated; the same class.
DownlinkInputError = InputError


@dataclass(frozen=True)
class Downlink:
    """One validated message for one device: the exact body to POST and its identity."""

    iccid: str
    body: dict


def downlink_digest(org_id: str, body: dict) -> str:
    """Identity of a delivery for the journal: all that reaches the device, never the key."""
    identity = [
        org_id,
        body["ICCID"],
        body["Topic"],
        body["QoS"],
        body["Format"],
        body.get("RetainLastMessage"),
        body["Message"],
    ]
    canonical = json.dumps(identity, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _refuse_constant(name: str):
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) and the API do not.
    raise ValueError(f"{name} is not valid JSON")


def validate_topic(topic, org_id: str, iccid: str, where: str = "topic") -> str:
    if topic is None:
        topic = ""
    if not isinstance(topic, str):
        raise DownlinkInputError(f"{where} must be a string, got {_describe_type(topic)}")
    if topic and not topic.startswith("/"):
        raise DownlinkInputError(f"{where} must be empty or start with '/', got {topic!r}")
    for char, name in FORBIDDEN_TOPIC_CHARS.items():
        if char in topic:
            raise DownlinkInputError(f"{where} must not contain the {name}, got {topic!r}")
    full_topic = f"/{org_id}/{iccid}/sub{topic}"
    try:
        size = len(full_topic.encode("utf-8"))
    except UnicodeEncodeError:
        raise DownlinkInputError(f"{where} is not valid UTF-8 text (it holds a lone surrogate)") from None
    if size > MAX_TOPIC_BYTES:
        raise DownlinkInputError(
            f"{where} is too long: the whole MQTT topic {full_topic[:40]!r}... would be {size} bytes,"
            f" the API allows at most {MAX_TOPIC_BYTES}"
        )
    return topic


def validate_qos(qos, where: str = "qos") -> int:
    if isinstance(qos, bool):
        raise DownlinkInputError(f"{where} must be 0 or 1, got {qos!r}")
    if isinstance(qos, str) and qos.strip() in ("0", "1"):
        qos = int(qos)  # CSV columns and extra-vars arrive as strings
    if qos not in QOS_CHOICES or not isinstance(qos, int):
        raise DownlinkInputError(f"{where} must be 0 or 1, got {qos!r}")
    return qos


def validate_retain(retain, where: str = "retain") -> bool | None:
    if retain is None:
        return None
    try:
        return boolean(retain, strict=True)
    except TypeError:
        raise DownlinkInputError(f"{where} must be a boolean, got {retain!r}") from None


def serialise_payload(payload, fmt: str | None, where: str = "payload") -> tuple[str, int]:
    """Return the API's ``(Message, Format)`` for a message and an optional format name."""
    if fmt is not None and (not isinstance(fmt, str) or fmt not in FORMAT_CODES):
        raise DownlinkInputError(
            f"{where.replace('payload', 'format')} must be one of json, text; got {fmt!r}"
        )
    if isinstance(payload, (dict, list)):
        # Compact and UTF-8: the device counts bytes, spaces cost airtime.
        try:
            text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise DownlinkInputError(f"{where} cannot be serialised to JSON: {exc}") from None
        except RecursionError:
            raise DownlinkInputError(f"{where} is nested too deeply to serialise to JSON") from None
        fmt = fmt or "json"
    elif isinstance(payload, str):
        text = payload
        fmt = fmt or "text"
        if fmt == "json":
            try:
                json.loads(text, parse_constant=_refuse_constant)
            except ValueError as exc:
                raise DownlinkInputError(
                    f"{where} is not valid JSON but format is json: {exc}"
                ) from None
            except RecursionError:
                raise DownlinkInputError(f"{where} is JSON nested too deeply to check") from None
    elif payload is None:
        raise DownlinkInputError(f"{where} is required")
    else:
        raise DownlinkInputError(
            f"{where} must be a string, or a dict or list to send as JSON; got {_describe_type(payload)}"
            f" {payload!r} (quote it to send it as text)"
        )
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise DownlinkInputError(f"{where} is not valid UTF-8 text (it holds a lone surrogate)") from None
    if size == 0:
        raise DownlinkInputError(f"{where} must not be empty (the API takes 1 to {MAX_MESSAGE_BYTES} bytes)")
    if size > MAX_MESSAGE_BYTES:
        raise DownlinkInputError(
            f"{where} is {size} bytes after serialisation, the API allows at most {MAX_MESSAGE_BYTES}"
        )
    return text, FORMAT_CODES[fmt]


def build_downlink(
    org_id: str, iccid, payload, fmt: str | None, topic, qos, retain, prefix: str = ""
) -> Downlink:
    """Validate one device's settings and build its exact request body.

    ``prefix`` places the option names, e.g. ``devices[3] (ICCID 8988...): ``.
    """
    iccid = normalise_iccid(iccid, f"{prefix}iccid")
    text, format_code = serialise_payload(payload, fmt, f"{prefix}payload")
    body = {
        "ICCID": iccid,
        "Topic": validate_topic(topic, org_id, iccid, f"{prefix}topic"),
        "Message": text,
        "QoS": validate_qos(qos, f"{prefix}qos"),
        "Format": format_code,
    }
    retain = validate_retain(retain, f"{prefix}retain")
    # Older API versions reject unknown keys: send it only when asked for.
    if retain is not None:
        body["RetainLastMessage"] = retain
    return Downlink(iccid=iccid, body=body)


def build_batch(org_id: str, devices, defaults: dict) -> list[Downlink]:
    """Validate every element of ``devices`` and build its body; fail on the first bad one.

    ``defaults`` holds the task-level ``payload``, ``format``, ``topic``,
    ``qos`` and ``retain``; a dict element overrides any of them.  ``format``
    is None unless the user set it, so a device's own dict payload still
    defaults to json while a task-level string defaults to text.
    """
    # An empty list is a valid, if dull, batch: a dynamic fleet query that
    # found nothing must not fail the play.
    downlinks = []
    for prefix, raw_iccid, overrides in device_elements(devices, DEVICE_KEYS):
        settings = {**defaults, **overrides} if overrides else defaults
        if settings.get("payload") is None:
            raise DownlinkInputError(
                f"{prefix}no payload: set the task's payload or give this device its own"
            )
        downlinks.append(build_downlink(
            org_id,
            raw_iccid,
            settings["payload"],
            settings.get("format"),
            settings.get("topic"),
            settings.get("qos", 0),
            settings.get("retain"),
            prefix=prefix,
        ))
    return downlinks
