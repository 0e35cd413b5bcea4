"""Control and inspection endpoints under /_emulator/ (no API key, loopback only).

Tests synchronise through the blocking `wait_for` / `wait_total` queries,
which wait on futures resolved by the device subscriber, never on sleeps.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from typing import Any

from aiohttp import web

from .api import BROKER_KEY, FAULTS_KEY, STATE_KEY
from .devices import ReceivedStore, late_subscribe
from .faults import FaultConfigError
from .state import generated_iccids
from .validation import ICCID_RE

CONTROL_PREFIX = "/_emulator"
STORE_KEY: web.AppKey[Any] = web.AppKey("received_store", object)
MQTT_ADDR_KEY: web.AppKey[Any] = web.AppKey("mqtt_addr", object)

MAX_WAIT_S = 600.0


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), content_type="application/json")


def _bad(message: str) -> web.Response:
    return _json({"ok": False, "error": message}, status=400)


def _query_number(request: web.Request, name: str, default: float | None) -> float | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise web.HTTPBadRequest(text=json.dumps({"ok": False, "error": f"{name} must be a number"}),
                                 content_type="application/json") from None
    return value


@web.middleware
async def loopback_only(request: web.Request, handler: Any) -> web.StreamResponse:
    if request.path.startswith(CONTROL_PREFIX):
        remote = request.remote or ""
        try:
            is_loopback = ipaddress.ip_address(remote).is_loopback
        except ValueError:
            is_loopback = False
        if not is_loopback:
            return _json({"ok": False, "error": "control endpoints are loopback only"}, status=403)
    return await handler(request)


async def health(_request: web.Request) -> web.Response:
    return _json({"ok": True})


async def messages(request: web.Request) -> web.Response:
    items = request.app[STATE_KEY].messages
    iccid = request.query.get("iccid")
    org = request.query.get("org")
    if iccid is not None:
        items = [m for m in items if m["iccid"] == iccid]
    if org is not None:
        items = [m for m in items if m["org"] == org]
    return _json(list(items))


async def device_received(request: web.Request) -> web.Response:
    store: ReceivedStore = request.app[STORE_KEY]
    org, iccid = request.match_info["org"], request.match_info["iccid"]
    wait_for = _query_number(request, "wait_for", None)
    timeout = min(_query_number(request, "timeout", 10.0) or 0.0, MAX_WAIT_S)
    if wait_for is not None:
        await store.wait(lambda: store.count(org, iccid) >= wait_for, timeout)
    return _json({"received": store.device(org, iccid)})


async def received_counts(request: web.Request) -> web.Response:
    store: ReceivedStore = request.app[STORE_KEY]
    wait_total = _query_number(request, "wait_total", None)
    timeout = min(_query_number(request, "timeout", 30.0) or 0.0, MAX_WAIT_S)
    if wait_total is not None:
        await store.wait(lambda: store.total() >= wait_total, timeout)
    return _json({"total": store.total(), "by_device": store.counts()})


async def received_all(request: web.Request) -> web.Response:
    return _json(request.app[STORE_KEY].all())


async def late_subscribe_handler(request: web.Request) -> web.Response:
    org, iccid = request.match_info["org"], request.match_info["iccid"]
    host, port = request.app[MQTT_ADDR_KEY]
    if port is None:
        return _json({"ok": False, "error": "MQTT is disabled (--no-mqtt)"}, status=409)
    timeout = min(_query_number(request, "timeout", 5.0) or 5.0, 60.0)
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(None, late_subscribe, host, port, org, iccid, timeout)
    return _json(result)


async def add_devices(request: web.Request) -> web.Response:
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        return _bad(f"body is not valid JSON: {exc}")
    if not isinstance(body, dict) or not isinstance(body.get("org"), str):
        return _bad("body must be an object with a string 'org'")
    org = body["org"]
    if "iccids" in body:
        iccids = body["iccids"]
        if not isinstance(iccids, list) or not all(isinstance(i, str) and ICCID_RE.fullmatch(i) for i in iccids):
            return _bad("'iccids' must be a list of 1-22 digit strings")
    elif "count" in body:
        count, prefix = body["count"], body.get("prefix", "89882806660")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            return _bad("'count' must be an int >= 0")
        if not isinstance(prefix, str) or not prefix.isdigit():
            return _bad("'prefix' must be a digit string")
        iccids = generated_iccids(count, prefix)
    else:
        return _bad("give 'iccids' or 'count' (and optional 'prefix')")
    registry = request.app[STATE_KEY].registry
    if org not in registry.orgs:
        return _bad(f"unknown org {org!r}; orgs are set on the command line")
    added = registry.add_devices(org, iccids)
    return _json({"ok": True, "added": added, "devices": registry.device_count(org)})


async def reset(request: web.Request) -> web.Response:
    app = request.app
    app[STATE_KEY].reset()
    app[FAULTS_KEY].reset()
    app[STORE_KEY].clear()
    cleared = 0
    broker = app[BROKER_KEY]
    if broker is not None:
        cleared = broker.clear_retained()
    return _json({"ok": True, "retained_cleared": cleared})


async def stats(request: web.Request) -> web.Response:
    data = request.app[STATE_KEY].stats.as_dict()
    data["received"] = request.app[STORE_KEY].total()
    broker = request.app[BROKER_KEY]
    data["delivery_failures"] = broker.delivery_failures if broker is not None else 0
    return _json(data)


async def get_faults(request: web.Request) -> web.Response:
    return _json(request.app[FAULTS_KEY].settings.as_dict())


async def put_faults(request: web.Request) -> web.Response:
    """PUT replaces all fault settings (missing keys = defaults); PATCH merges."""
    try:
        body = await request.json()
    except json.JSONDecodeError as exc:
        return _bad(f"body is not valid JSON: {exc}")
    try:
        settings = request.app[FAULTS_KEY].apply(body, replace=request.method == "PUT")
    except FaultConfigError as exc:
        return _bad(str(exc))
    return _json(settings.as_dict())


async def retained(request: web.Request) -> web.Response:
    broker = request.app[BROKER_KEY]
    data = broker.retained() if broker is not None else {}
    return _json({topic: payload.decode("utf-8", errors="replace") for topic, payload in data.items()})


def add_routes(app: web.Application) -> None:
    p = CONTROL_PREFIX
    app.router.add_get(f"{p}/health", health)
    app.router.add_get(f"{p}/messages", messages)
    app.router.add_get(f"{p}/devices/{{org}}/{{iccid}}/received", device_received)
    app.router.add_post(f"{p}/devices/{{org}}/{{iccid}}/late-subscribe", late_subscribe_handler)
    app.router.add_post(f"{p}/devices", add_devices)
    app.router.add_get(f"{p}/received", received_counts)
    app.router.add_get(f"{p}/received/all", received_all)
    app.router.add_post(f"{p}/reset", reset)
    app.router.add_get(f"{p}/stats", stats)
    app.router.add_get(f"{p}/faults", get_faults)
    app.router.add_put(f"{p}/faults", put_faults)
    app.router.add_patch(f"{p}/faults", put_faults)
    app.router.add_get(f"{p}/retained", retained)
