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

from .api import FAULTS_KEY, FLEET_KEY, MQTT_KEY, STATE_KEY, UPLINKS_KEY, WEBHOOK_KEY
from .devices import DeviceError, ReceivedStore
from .faults import FaultConfigError
from .state import generated_iccids
from .validation import ICCID_RE

CONTROL_PREFIX = "/_emulator"
STORE_KEY: web.AppKey[Any] = web.AppKey("received_store", object)
DEVICE_FILTER = "/+/+/sub/#"

MAX_WAIT_S = 600.0


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, body=json.dumps(data).encode(), content_type="application/json")


def _bad(message: str, status: int = 400) -> web.Response:
    return _json({"ok": False, "error": message}, status=status)


def _no_mqtt() -> web.Response:
    return _bad("MQTT is disabled (--no-mqtt)", status=409)


async def settled(app: web.Application, org: str | None = None, iccid: str | None = None) -> None:
    """Wait for the device's queued reconnections (every device's without org/iccid) to be over.

    A reset is answered before its device has reconnected; what the control
    endpoints report is the state after it, as a test expects right after the answer.
    """
    fleet = app[FLEET_KEY]
    if fleet is not None and fleet.reconnecting:
        await fleet.settled(f"{org}/{iccid}" if iccid is not None else None)


async def _probe(app: web.Application, topic_filter: str) -> list[dict[str, Any]]:
    """Retained messages a new subscriber to the filter gets, after the broker has every earlier publish."""
    await app[MQTT_KEY].flush()
    return await app[FLEET_KEY].probe(topic_filter)


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
    await settled(request.app, org, iccid)
    wait_for = _query_number(request, "wait_for", None)
    timeout = min(_query_number(request, "timeout", 10.0) or 0.0, MAX_WAIT_S)
    if wait_for is not None:
        await store.wait(lambda: store.count(org, iccid) >= wait_for, timeout)
    return _json({"received": store.device(org, iccid)})


async def received_counts(request: web.Request) -> web.Response:
    store: ReceivedStore = request.app[STORE_KEY]
    await settled(request.app)
    wait_total = _query_number(request, "wait_total", None)
    timeout = min(_query_number(request, "timeout", 30.0) or 0.0, MAX_WAIT_S)
    if wait_total is not None:
        await store.wait(lambda: store.total() >= wait_total, timeout)
    return _json({"total": store.total(), "by_device": store.counts()})


async def received_all(request: web.Request) -> web.Response:
    await settled(request.app)
    return _json(request.app[STORE_KEY].all())


async def late_subscribe_handler(request: web.Request) -> web.Response:
    org, iccid = request.match_info["org"], request.match_info["iccid"]
    if request.app[FLEET_KEY] is None:
        return _no_mqtt()
    await settled(request.app, org, iccid)
    try:
        received = await _probe(request.app, f"/{org}/{iccid}/sub/#")
    except (DeviceError, ConnectionError) as exc:
        return _bad(f"late subscribe failed: {exc}", status=500)
    return _json({"received": received})


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
    """Back to the state at start: logs, receipts, stats, faults, SIM states, uplinks, retained messages."""
    app = request.app
    state, fleet, mqtt = app[STATE_KEY], app[FLEET_KEY], app[MQTT_KEY]
    await settled(app)
    offline = state.registry.disabled()
    state.reset()
    app[FAULTS_KEY].reset()
    cleared = 0
    if fleet is not None:
        try:
            if offline:
                await fleet.command("online", devices=offline)
            # A zero-byte retained message clears the broker's retained store for its topic.
            topics = [m["topic"] for m in await _probe(app, DEVICE_FILTER)]
            await asyncio.gather(*(mqtt.deliver(topic, b"", 1, True) for topic in topics))
            cleared = len(topics)
            # Whatever was still on its way to the devices arrives before the receipts are cleared.
            await fleet.sync(mqtt)
        except (DeviceError, ConnectionError) as exc:
            return _bad(f"reset failed: {exc}", status=500)
    app[STORE_KEY].clear()
    app[UPLINKS_KEY].clear()
    app[WEBHOOK_KEY].clear()
    return _json({"ok": True, "retained_cleared": cleared})


async def stats(request: web.Request) -> web.Response:
    data = request.app[STATE_KEY].stats.as_dict()
    data["received"] = request.app[STORE_KEY].total()
    data["uplinks"] = request.app[UPLINKS_KEY].count("raw")
    data["failed_data"] = request.app[UPLINKS_KEY].count("failed")
    fleet = request.app[FLEET_KEY]
    # Device reconnections (SIM resets, SIMs enabled): queued now, and batches run since the start.
    data["reconnecting"] = len(fleet.reconnecting) if fleet is not None else 0
    data["reconnect_batches"] = fleet.reconnect_batches if fleet is not None else 0
    return _json(data)


async def sync(request: web.Request) -> web.Response:
    """Blocks until every downlink published before this call has reached the devices."""
    fleet = request.app[FLEET_KEY]
    if fleet is None:
        return _no_mqtt()
    timeout = min(_query_number(request, "timeout", 30.0) or 30.0, MAX_WAIT_S)
    await settled(request.app)
    try:
        done = await fleet.sync(request.app[MQTT_KEY], timeout)
    except (DeviceError, ConnectionError) as exc:
        return _bad(f"sync failed: {exc}", status=500)
    return _json({"ok": done})


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
    """The broker's retained device messages, {topic: payload}, as a new subscriber gets them."""
    if request.app[FLEET_KEY] is None:
        return _json({})
    await settled(request.app)
    try:
        received = await _probe(request.app, DEVICE_FILTER)
    except (DeviceError, ConnectionError) as exc:
        return _bad(f"reading the retained messages failed: {exc}", status=500)
    return _json({m["topic"]: m["payload"] for m in received})


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
    app.router.add_post(f"{p}/sync", sync)
