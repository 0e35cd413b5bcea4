# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""monoz.link.webhook: receive Monoz Link's webhook pushes as Event-Driven Ansible events.

ansible-rulebook loads an event source with runpy.run_path, so this file
cannot import the collection's module_utils: it is self-contained, and
raw_data.py repeats the few lines that build an event from a packet.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import json
import logging
import re
import ssl
import sys
import traceback
from datetime import datetime
from typing import Any, Callable

from aiohttp import web

DOCUMENTATION = r"""
---
short_description: Receive Monoz Link device uplinks pushed by its webhook integration.
description:
  - An ansible-rulebook event source that serves the endpoint Monoz Link's webhook integration
    posts device uplinks to, over HTTP or HTTPS.
  - Monoz Link posts one packet C({"ICCID", "Timestamp", "Payload"}) (C(Topic) instead of C(ICCID)
    when the integration's topic option is on), or a JSON array of up to 10 packets that arrived
    within one second. The source emits one event per packet, in order.
  - "Each event is C({"monoz": {"iccid", "topic", "timestamp", "payload", "payload_json"}}):
    C(iccid) is the packet's ICCID, or read from C(Topic) (layout C(<level1>/<org>/<iccid>/<level4>)) when the
    packet has none; C(topic) is the packet's C(Topic) or null; C(timestamp) and C(payload) are as sent;
    C(payload_json) is the payload parsed as JSON, present only when the payload is valid JSON
    (strict: no C(NaN), no number too large for a float, at most 64 levels of nesting)."
  - The request is answered C(200) only once every packet of it is in the rulebook's event queue.
    When rules run slower than uplinks arrive, the queue is full and the answer waits, so Monoz Link
    waits too (it allows 90 seconds) instead of packets being dropped; the HTTP requests are queued
    in arrival order. A packet is never acknowledged without being queued, and a batch is queued
    whole or not at all. Should Monoz Link give up waiting and send the batch again, its packets are
    emitted twice (at-least-once delivery), so rules should be safe to run twice for one uplink.
  - Answers C(401) when the credentials are missing or wrong (compared in constant time, before the
    body is read), C(400) when the body is not valid JSON, is not a packet or an array of 1 to 10 packets,
    or a packet lacks a field or has one of the wrong type (nothing of such a request is emitted),
    C(413) when the body is larger than O(max_body_size), C(408) when the body takes longer than
    O(body_timeout) to arrive, C(404) on any other path and C(405) for any method but POST.
  - Credentials never appear in events or logs. One authentication is required; without one the
    source refuses to start unless O(insecure_no_auth=true).
options:
  host:
    description:
      - The address to listen on.
    type: str
    default: "0.0.0.0"
  port:
    description:
      - The TCP port to listen on.
    type: int
    default: 5000
  path:
    description:
      - The URL path Monoz Link posts to, starting with C(/). Other paths answer C(404).
    type: str
    default: "/"
  certfile:
    description:
      - Path to a PEM certificate (chain) file; serves HTTPS instead of HTTP.
      - Monoz Link posts over the internet, so use HTTPS for anything but a test.
    type: str
  keyfile:
    description:
      - Path to the certificate's private key, when it is not in O(certfile).
    type: str
  token:
    description:
      - Expect the header C(Authorization: Bearer <token>) (Monoz Link's Bearer token authentication).
      - Mutually exclusive with O(username)/O(password) and O(header_name)/O(header_value).
    type: str
  username:
    description:
      - Expect HTTP Basic authentication with this user name and O(password).
    type: str
  password:
    description:
      - The password for HTTP Basic authentication, with O(username).
    type: str
  header_name:
    description:
      - Expect this header to carry O(header_value) (Monoz Link's API key header authentication),
        for example C(X-API-Key).
    type: str
  header_value:
    description:
      - The value the O(header_name) header must carry.
    type: str
  insecure_no_auth:
    description:
      - Accept posts without any authentication. Only for a test on a trusted network.
    type: bool
    default: false
  max_body_size:
    description:
      - The largest request body accepted, in bytes; a larger one is answered C(413) unread.
      - The default holds 10 packets of the largest uplink (6 KB) even when every payload byte needs a
        six-character JSON escape, plus the other fields.
    type: int
    default: 524288
  body_timeout:
    description:
      - Seconds a client has to send the whole body once its headers are in; a slower one is answered
        C(408), so slow clients cannot hold the endpoint.
    type: float
    default: 30
notes:
  - Requires the Python library aiohttp.
  - Point Monoz Link's webhook integration at C(https://<host>:<port><path>) with the matching
    authentication; see the Event-Driven Ansible guide of the monoz.link collection.
"""

EXAMPLES = r"""
- name: Device uplinks
  hosts: localhost
  sources:
    - monoz.link.webhook:
        port: 5000
        certfile: /etc/eda/tls/cert.pem
        keyfile: /etc/eda/tls/key.pem
        token: "{{ monoz_webhook_token }}"
  rules:
    - name: Print every uplink
      condition: event.monoz is defined
      action:
        print_event:
          pretty: true
"""

logger = logging.getLogger("monoz.link.webhook")
# aiohttp's own server log (malformed requests): it may quote a raw header line, so it goes through a redacting filter.
http_logger = logging.getLogger("monoz.link.webhook.http")

MAX_PACKETS = 10
MAX_JSON_DEPTH = 64
ICCID_RE = re.compile(r"[0-9]{1,22}")
# ISO 8601 date and time as Monoz Link writes it (7 fractional digits, Z); offsets and other precisions pass too.
TIMESTAMP_RE = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})(\.[0-9]{1,9})?(Z|[+-][0-9]{2}:?[0-9]{2})?"
)
ARGUMENTS = frozenset((
    "host", "port", "path", "certfile", "keyfile", "token", "username", "password",
    "header_name", "header_value", "insecure_no_auth", "max_body_size", "body_timeout",
))
# HTTP header names are RFC 9110 tokens.
HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


class WebhookArgumentError(ValueError):
    """A source argument is missing, of the wrong type, or conflicts with another."""


class MalformedBody(ValueError):
    """The request body is not a packet or an array of up to 10 packets."""


# -- events ------------------------------------------------------------------------------------


def _utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes
        return False
    return True


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
        # The event travels on as JSON (to the rules engine, in Java): no lone surrogates, no
        # overflowed floats (1e999 parses as inf), and no nesting deeper than JSON parsers there allow.
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
    """The event for one uplink: {"monoz": {...}}, payload_json only when the payload parses."""
    if iccid is None and topic is not None:
        iccid = iccid_from_topic(topic)
    data: dict[str, Any] = {"iccid": iccid, "topic": topic, "timestamp": timestamp, "payload": payload}
    parsed, value = parse_payload_json(payload)
    if parsed:
        data["payload_json"] = value
    return {"monoz": data}


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), type(value).__name__)


def _field(packet: dict[str, Any], name: str, where: str, nullable: bool) -> str | None:
    value = packet.get(name)
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        kind = "missing" if name not in packet else f"a JSON {json_type(value)}, not a string"
        raise MalformedBody(f"{where}: {name} is {kind}")
    if not _utf8(value):
        raise MalformedBody(f"{where}: {name} is not valid Unicode")
    return value


def _valid_timestamp(text: str) -> bool:
    match = TIMESTAMP_RE.fullmatch(text)
    if not match:
        return False
    try:
        datetime(*(int(match.group(index)) for index in range(1, 7)))
    except ValueError:  # 2026-02-30, 25:00, ...
        return False
    return True


def packet_to_event(packet: Any, where: str) -> dict[str, Any]:
    if not isinstance(packet, dict):
        raise MalformedBody(f"{where} is a JSON {json_type(packet)}, not an object")
    iccid = _field(packet, "ICCID", where, nullable=True)
    topic = _field(packet, "Topic", where, nullable=True)
    timestamp = _field(packet, "Timestamp", where, nullable=False)
    payload = _field(packet, "Payload", where, nullable=False)
    if iccid is None and topic is None:
        raise MalformedBody(f"{where} has neither ICCID nor Topic")
    if iccid is not None and not ICCID_RE.fullmatch(iccid):
        raise MalformedBody(f"{where}: ICCID is not 1 to 22 digits")
    if not _valid_timestamp(timestamp):
        raise MalformedBody(f"{where}: Timestamp is not an ISO 8601 date and time")
    return packet_event(iccid, topic, timestamp, payload)


def body_to_events(body: bytes) -> list[dict[str, Any]]:
    """Every packet of a request body as an event; MalformedBody names the first problem."""
    try:
        document = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise MalformedBody("body is not UTF-8") from None
    except (ValueError, RecursionError):
        raise MalformedBody("body is not valid JSON") from None
    if isinstance(document, dict):
        return [packet_to_event(document, "packet")]
    if not isinstance(document, list):
        raise MalformedBody("body is neither a packet (JSON object) nor an array of packets")
    if not 1 <= len(document) <= MAX_PACKETS:
        raise MalformedBody(f"body holds {len(document)} packets; an array holds 1 to {MAX_PACKETS}")
    return [packet_to_event(packet, f"packet {index}") for index, packet in enumerate(document)]


# -- arguments ---------------------------------------------------------------------------------


def _str_arg(args: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = args.get(name, default)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise WebhookArgumentError(f"monoz.link.webhook: {name} must be a non-empty string")
    return value


def _bool_arg(args: dict[str, Any], name: str, default: bool) -> bool:
    value = args.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "1", "false", "no", "off", "0"):
        return value.strip().lower() in ("true", "yes", "on", "1")
    raise WebhookArgumentError(f"monoz.link.webhook: {name} must be a boolean")


def _number_arg(args: dict[str, Any], name: str, default: float, kind: type, low: float, high: float) -> Any:
    value = args.get(name, default)
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value)
        if kind is int and isinstance(value, float) and not value.is_integer():
            raise ValueError
    except (TypeError, ValueError):
        raise WebhookArgumentError(f"monoz.link.webhook: {name} must be a number from {low} to {high}") from None
    if not low <= number <= high:
        raise WebhookArgumentError(f"monoz.link.webhook: {name} must be from {low} to {high}, got {number}")
    return number


def _constant_equal(given: str, expected: str) -> bool:
    # surrogatepass: any str encodes, so an odd header cannot raise instead of answering 401
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def _scheme_credentials(headers: Any, scheme: str) -> str | None:
    value = headers.get("Authorization")
    if value is None:
        return None
    given_scheme, _separator, credentials = value.strip().partition(" ")
    if given_scheme.lower() != scheme:
        return None
    return credentials.strip()


def _authenticator(args: dict[str, Any]) -> tuple[Callable[[Any], bool] | None, str | None]:
    """(check(headers) -> bool, WWW-Authenticate value); (None, None) for insecure_no_auth."""
    token = _str_arg(args, "token")
    username, password = _str_arg(args, "username"), _str_arg(args, "password")
    header_name, header_value = _str_arg(args, "header_name"), _str_arg(args, "header_value")
    insecure = _bool_arg(args, "insecure_no_auth", False)
    if (username is None) != (password is None):
        raise WebhookArgumentError("monoz.link.webhook: username and password go together; one of them is missing")
    if (header_name is None) != (header_value is None):
        raise WebhookArgumentError("monoz.link.webhook: header_name and header_value go together; one of them is missing")
    chosen = [name for name, value in (("token", token), ("username/password", username),
                                       ("header_name/header_value", header_name)) if value is not None]
    if len(chosen) > 1:
        raise WebhookArgumentError(f"monoz.link.webhook: give one authentication, not {' and '.join(chosen)}")
    if insecure and chosen:
        raise WebhookArgumentError(f"monoz.link.webhook: insecure_no_auth is true but {chosen[0]} is set; drop one")
    if not chosen:
        if insecure:
            return None, None
        raise WebhookArgumentError(
            "monoz.link.webhook: no authentication: set token, username/password or header_name/header_value "
            "(or insecure_no_auth: true for a test on a trusted network)"
        )
    if token is not None:
        expected_token = token

        def check_bearer(headers: Any) -> bool:
            given = _scheme_credentials(headers, "bearer")
            return _constant_equal(given or "", expected_token) and given is not None

        return check_bearer, 'Bearer realm="monoz.link.webhook"'
    if username is not None:
        expected_pair = f"{username}:{password}"

        def check_basic(headers: Any) -> bool:
            given = _scheme_credentials(headers, "basic")
            try:
                decoded = base64.b64decode((given or "").encode("ascii"), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeError):
                decoded = None
            return _constant_equal(decoded or "", expected_pair) and decoded is not None

        return check_basic, 'Basic realm="monoz.link.webhook", charset="UTF-8"'
    if not HEADER_NAME_RE.fullmatch(header_name or ""):
        raise WebhookArgumentError("monoz.link.webhook: header_name is not a valid HTTP header name")
    expected_value = header_value or ""

    def check_header(headers: Any) -> bool:
        given = headers.get(header_name)
        return _constant_equal(given or "", expected_value) and given is not None

    return check_header, None


def _secrets(args: dict[str, Any]) -> list[str]:
    """Every form in which a configured credential could show up in a request."""
    found = [args.get("token"), args.get("password"), args.get("header_value")]
    if args.get("username") and args.get("password"):
        pair = f"{args['username']}:{args['password']}"
        found += [pair, base64.b64encode(pair.encode("utf-8")).decode("ascii")]
    return sorted({value for value in found if isinstance(value, str) and value}, key=len, reverse=True)


class RedactFilter(logging.Filter):
    """Masks the credentials in a log record, its arguments and its traceback."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
        for secret in self.secrets:
            text = text.replace(secret, "********")
        record.msg, record.args, record.exc_info, record.exc_text = text, None, None, None
        return True


def _ssl_context(args: dict[str, Any]) -> ssl.SSLContext | None:
    certfile, keyfile = _str_arg(args, "certfile"), _str_arg(args, "keyfile")
    if certfile is None:
        if keyfile is not None:
            raise WebhookArgumentError("monoz.link.webhook: keyfile needs certfile")
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certfile, keyfile)
    except (OSError, ssl.SSLError) as exc:
        reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        raise WebhookArgumentError(f"monoz.link.webhook: cannot load certfile/keyfile: {reason}") from None
    return context


class Settings:
    """Validated source arguments; holds no credential in any printable attribute."""

    def __init__(self, args: dict[str, Any]) -> None:
        # ansible-rulebook adds its own keys (eda_feedback_queue, ...); anything else unknown is a typo.
        unknown = sorted(str(key) for key in args if key not in ARGUMENTS and not str(key).startswith("eda_"))
        if unknown:
            raise WebhookArgumentError(
                f"monoz.link.webhook: unknown argument(s) {', '.join(unknown)}; known: {', '.join(sorted(ARGUMENTS))}"
            )
        self.host = _str_arg(args, "host", "0.0.0.0")  # noqa: S104 - a webhook receiver faces the network
        self.port = _number_arg(args, "port", 5000, int, 0, 65535)
        self.path = _str_arg(args, "path", "/") or "/"
        if not self.path.startswith("/"):
            raise WebhookArgumentError("monoz.link.webhook: path must start with /")
        self.max_body_size = _number_arg(args, "max_body_size", 524288, int, 1024, 64 * 1024 * 1024)
        self.body_timeout = _number_arg(args, "body_timeout", 30.0, float, 0.001, 3600)
        self.check, self.challenge = _authenticator(args)
        self.ssl_context = _ssl_context(args)
        self.redact = RedactFilter(_secrets(args))

    def __repr__(self) -> str:
        return f"<monoz.link.webhook settings {self.host}:{self.port}{self.path}>"


# -- server ------------------------------------------------------------------------------------


class Receiver:
    """The request handler: authenticate, bound the body, validate, queue, then answer."""

    def __init__(self, queue: asyncio.Queue, settings: Settings) -> None:
        self.queue = queue
        self.settings = settings
        # FIFO (asyncio.Lock wakes waiters in order): batches reach the queue whole and in arrival order.
        self.enqueue_lock = asyncio.Lock()

    def _reject(self, request: web.Request, status: int, reason: str) -> web.Response:
        logger.warning("monoz.link.webhook: %s %s from %s answered %d: %s",
                       request.method, request.path, request.remote, status, reason)
        headers = {"WWW-Authenticate": self.settings.challenge} if status == 401 and self.settings.challenge else None
        return web.json_response({"status": status, "message": reason}, status=status, headers=headers)

    async def handle(self, request: web.Request) -> web.Response:
        if self.settings.check is not None and not self.settings.check(request.headers):
            return self._reject(request, 401, "missing or wrong credentials")
        length = request.content_length
        if length is not None and length > self.settings.max_body_size:
            return self._reject(request, 413, f"body of {length} bytes is over the limit of {self.settings.max_body_size}")
        try:
            body = await asyncio.wait_for(self._read(request), self.settings.body_timeout)
        except asyncio.TimeoutError:
            return self._reject(request, 408, f"body not received within {self.settings.body_timeout:g} s")
        if body is None:
            return self._reject(request, 413, f"body is over the limit of {self.settings.max_body_size} bytes")
        try:
            events = body_to_events(body)
        except MalformedBody as exc:
            return self._reject(request, 400, str(exc))
        # Shielded: once validated, a batch is queued whole even if the sender hangs up meanwhile,
        # since it will send the batch again and a duplicate is better than a loss.
        await asyncio.shield(self._enqueue(events))
        logger.debug("monoz.link.webhook: queued %d packet(s) from %s", len(events), request.remote)
        return web.json_response({"status": 200, "message": "queued", "packets": len(events)})

    async def _read(self, request: web.Request) -> bytes | None:
        """The body, or None once it grows past max_body_size (chunked bodies carry no length)."""
        limit = self.settings.max_body_size
        chunks, size = [], 0
        while True:
            chunk = await request.content.read(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)

    async def _enqueue(self, events: list[dict[str, Any]]) -> None:
        async with self.enqueue_lock:
            for event in events:
                await self.queue.put(event)


def build_app(queue: asyncio.Queue, settings: Settings) -> web.Application:
    receiver = Receiver(queue, settings)
    app = web.Application(client_max_size=settings.max_body_size)
    app.router.add_post(settings.path, receiver.handle)
    return app


async def main(queue: asyncio.Queue, args: dict[str, Any]) -> None:
    """Serve the webhook endpoint until the rulebook stops the source."""
    settings = Settings(args)
    app = build_app(queue, settings)
    # No access log: it is not needed, and it is one less place a request detail could leak.
    http_logger.addFilter(settings.redact)
    try:
        runner = web.AppRunner(app, access_log=None, handler_cancellation=False, logger=http_logger)
        await runner.setup()
        try:
            site = web.TCPSite(runner, settings.host, settings.port, ssl_context=settings.ssl_context)
            await site.start()
            if settings.check is None:
                logger.warning("monoz.link.webhook: insecure_no_auth is true: anyone who reaches the port can post events")
            logger.info("monoz.link.webhook: listening on %s://%s path %s",
                        "https" if settings.ssl_context else "http",
                        ", ".join(f"{address[0]}:{address[1]}" for address in runner.addresses),
                        settings.path)
            await asyncio.Future()
        finally:
            await runner.cleanup()
    finally:
        http_logger.removeFilter(settings.redact)


if __name__ == "__main__":
    # Try it without a rulebook: python webhook.py '{"port": 5000, "token": "..."}' (or @args.json);
    # every event is printed as one JSON line.

    class MockQueue(asyncio.Queue):
        async def put(self, item: Any) -> None:
            print(json.dumps(item), flush=True)  # noqa: T201

    logging.basicConfig(level=logging.INFO)
    text = sys.argv[1] if len(sys.argv) > 1 else '{"host": "127.0.0.1", "port": 5000, "insecure_no_auth": true}'
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            text = handle.read()
    try:
        asyncio.run(main(MockQueue(), json.loads(text)))
    except (WebhookArgumentError, ValueError) as exc:
        sys.exit(str(exc))
    except KeyboardInterrupt:
        pass
