"""The emulated vendor API: POST /api/v1/{org}/Publish/Message.

Order of handling for each request (each step can end it):
  1. injected latency (the simulated network),
  2. server rate limit -> 429 + Retry-After (the API gateway),
  3. injected fault: per-ICCID script, global script, random rates,
  4. X-API-Key against the org -> 401 (unknown org is also 401),
  5. body validation -> 400 with a message naming the field,
  6. ICCID registered for the org -> 404,
  7. hand-off to the MQTT broker, then 200.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from aiohttp import web

from .broker import EmbeddedBroker
from .faults import Fault, FaultInjector
from .state import State
from .validation import BadRequest, iccid_hint, parse_body, validate_publish

LOG = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

STATE_KEY: web.AppKey[State] = web.AppKey("state", State)
FAULTS_KEY: web.AppKey[FaultInjector] = web.AppKey("faults", FaultInjector)
BROKER_KEY: web.AppKey[Any] = web.AppKey("broker", object)
STOPPING_KEY: web.AppKey[asyncio.Event] = web.AppKey("stopping", asyncio.Event)

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}

_SUCCESS = json.dumps({"Error": False, "StatusCode": 200, "Message": "MessagePublished"}).encode()


def error_response(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = json.dumps({"Error": True, "StatusCode": status, "Message": message}).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _count(state: State, status: int) -> None:
    state.stats.by_status[str(status)] += 1


async def _apply_fault(request: web.Request, fault: Fault) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    if fault.action == "status":
        _count(state, fault.status)
        reason = REASONS.get(fault.status, "Error")
        message = fault.message or f"{reason} (injected by emulator)"
        return error_response(fault.status, message, fault.retry_after)
    transport = request.transport
    if fault.action == "hang":
        state.stats.hung += 1
        # Hold the request open until the emulator stops; the client times out first.
        await request.app[STOPPING_KEY].wait()
    else:
        state.stats.dropped += 1
    if transport is not None:
        if fault.action == "reset":
            transport.abort()
        else:
            transport.close()
    # Nothing reaches the client: the transport is gone.
    raise _Dropped()


class _Dropped(Exception):
    """Raised after a connection fault closed the transport; the middleware swallows it."""


@web.middleware
async def drop_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Dropped:
        # aiohttp needs *a* response object; the transport is already closed.
        response = web.Response(status=204)
        response.force_close()
        return response


async def publish_message(request: web.Request) -> web.StreamResponse:
    app = request.app
    state = app[STATE_KEY]
    faults = app[FAULTS_KEY]
    state.stats.requests += 1

    latency = faults.latency_s
    if latency > 0:
        await asyncio.sleep(latency)

    retry_after = faults.rate_limited()
    if retry_after is not None:
        _count(state, 429)
        return error_response(429, "Rate limit exceeded; retry later", retry_after)

    raw = await request.read()
    try:
        body: Any = parse_body(raw)
        body_error: BadRequest | None = None
    except BadRequest as exc:
        body, body_error = None, exc

    fault = faults.next_fault(iccid_hint(body))
    if fault is not None:
        return await _apply_fault(request, fault)

    org = request.match_info["org"]
    if not state.registry.authorised(org, request.headers.get("X-API-Key")):
        _count(state, 401)
        return error_response(401, "API key is wrong or has no permission for this organisation")

    try:
        if body_error is not None:
            raise body_error
        req = validate_publish(org, body)
    except BadRequest as exc:
        _count(state, 400)
        return error_response(400, str(exc))

    if not state.registry.has_device(org, req.iccid):
        _count(state, 404)
        return error_response(404, f"ICCID {req.iccid} not found")

    broker: EmbeddedBroker = app[BROKER_KEY]
    if broker is not None:
        try:
            await broker.publish(req.mqtt_topic, req.payload, req.qos, req.retain)
        except Exception as exc:  # noqa: BLE001 - report broker trouble as the vendor's 500
            LOG.exception("publish to broker failed")
            _count(state, 500)
            return error_response(500, f"MQTT publish failed: {exc}")
    state.stats.published += 1
    state.log_message(org, req.iccid, req.topic_suffix, req.message, req.qos, req.format, req.retain, req.mqtt_topic)
    _count(state, 200)
    return web.Response(status=200, body=_SUCCESS, content_type="application/json")


async def api_not_found(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"No such endpoint: {request.method} {request.path}")


def add_routes(app: web.Application) -> None:
    app.router.add_post(API_PREFIX + "/{org}/Publish/Message", publish_message)
