"""The emulated vendor API: the request pipeline every endpoint shares, and Publish/Message.

Order of handling for each request (each step can end it):
  1. injected latency (the simulated network),
  2. server rate limit -> 429 + Retry-After (the API gateway),
  3. injected fault: per-ICCID script, global script, random rates,
  4. X-API-Key against the org -> 401 (unknown org is also 401),
  5. body validation -> 400 with a message naming the field,
  6. ICCID registered for the org -> 404,
  7. the endpoint's work (Publish: hand-off to the MQTT broker), then 200.
The SIM and data endpoints are in api_sim.py.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .faults import Fault, FaultInjector
from .state import State
from .validation import BadRequest, iccid_hint, parse_body, validate_publish

LOG = logging.getLogger(__name__)

API_PREFIX = "/api/v1"

STATE_KEY: web.AppKey[State] = web.AppKey("state", State)
FAULTS_KEY: web.AppKey[FaultInjector] = web.AppKey("faults", FaultInjector)
MQTT_KEY: web.AppKey[Any] = web.AppKey("mqtt", object)  # MqttClient, None with --no-mqtt
FLEET_KEY: web.AppKey[Any] = web.AppKey("fleet", object)  # DeviceFleet, None with --no-mqtt
UPLINKS_KEY: web.AppKey[Any] = web.AppKey("uplinks", object)
WEBHOOK_KEY: web.AppKey[Any] = web.AppKey("webhook", object)
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

# An endpoint's own work, after latency, rate limit, faults, key and body parsing:
# (request, org, parsed JSON body or None) -> response; BadRequest -> 400.
Action = Callable[[web.Request, str, Any], Awaitable[web.Response]]


def error_response(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = json.dumps({"Error": True, "StatusCode": status, "Message": message}).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def success(message: str, data: Any = None) -> web.Response:
    doc: dict[str, Any] = {"Error": False, "StatusCode": 200, "Message": message}
    if data is not None:
        doc["Data"] = data
    return web.Response(status=200, body=json.dumps(doc).encode(), content_type="application/json")


def not_found(iccid: str) -> web.Response:
    return error_response(404, f"ICCID {iccid} not found")


async def _apply_fault(request: web.Request, fault: Fault) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    if fault.action == "status":
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


def endpoint(name: str, action: Action, has_body: bool) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """An aiohttp handler running `action` behind the shared steps 1-5."""

    async def handle(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE_KEY]
        state.stats.requests += 1
        try:
            response = await _pipeline(request, action, has_body)
        except _Dropped:
            raise
        except Exception:  # noqa: BLE001 - an emulator bug still answers, and is counted, like a server error
            LOG.exception("%s failed", name)
            response = error_response(500, "internal error in the emulator")
        state.stats.answered(name, response.status)
        return response

    return handle


async def _pipeline(request: web.Request, action: Action, has_body: bool) -> web.StreamResponse:
    app = request.app
    faults = app[FAULTS_KEY]
    latency = faults.latency_s
    if latency > 0:
        await asyncio.sleep(latency)

    retry_after = faults.rate_limited()
    if retry_after is not None:
        return error_response(429, "Rate limit exceeded; retry later", retry_after)

    body: Any = None
    body_error: BadRequest | None = None
    if has_body:
        try:
            body = parse_body(await request.read())
        except BadRequest as exc:
            body_error = exc

    fault = faults.next_fault(request.match_info.get("iccid") or iccid_hint(body))
    if fault is not None:
        return await _apply_fault(request, fault)

    org = request.match_info["org"]
    if not app[STATE_KEY].registry.authorised(org, request.headers.get("X-API-Key")):
        return error_response(401, "API key is wrong or has no permission for this organisation")

    try:
        if body_error is not None:
            raise body_error
        return await action(request, org, body)
    except BadRequest as exc:
        return error_response(400, str(exc))


async def publish_message(request: web.Request, org: str, body: Any) -> web.Response:
    app = request.app
    state = app[STATE_KEY]
    req = validate_publish(org, body)
    if not state.registry.has_device(org, req.iccid):
        return not_found(req.iccid)
    mqtt = app[MQTT_KEY]
    fleet = app[FLEET_KEY]
    if fleet is not None and fleet.reconnecting:
        # After a reset the device is sent to once it has reconnected, as if the reset had taken no time.
        await fleet.settled(f"{org}/{req.iccid}")
    if mqtt is not None:
        try:
            # Returns once the broker has it: "HTTP 200 seen" means "the broker has the message".
            await mqtt.deliver(req.mqtt_topic, req.payload, req.qos, req.retain)
        except Exception as exc:  # noqa: BLE001 - report broker trouble as the vendor's 500
            LOG.error("publish to the MQTT broker failed: %s", exc)
            state.stats.delivery_failures += 1
            return error_response(500, f"MQTT publish failed: {exc}")
    state.stats.published += 1
    state.registry.device(org, req.iccid).dl_message_count += 1
    state.log_message(org, req.iccid, req.topic_suffix, req.message, req.qos, req.format, req.retain, req.mqtt_topic)
    return success("MessagePublished")


async def api_not_found(request: web.Request) -> web.StreamResponse:
    return error_response(404, f"No such endpoint: {request.method} {request.path}")


def add_routes(app: web.Application) -> None:
    app.router.add_post(API_PREFIX + "/{org}/Publish/Message",
                        endpoint("POST Publish/Message", publish_message, has_body=True))
