"""Control endpoints for device state, device uplinks and the webhook (under /_emulator/, loopback only)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web

from .api import FLEET_KEY, STATE_KEY, UPLINKS_KEY, WEBHOOK_KEY
from .control import CONTROL_PREFIX, MAX_WAIT_S, _bad, _json, _no_mqtt, _query_number, settled
from .devices import DeviceError
from .webhook import WebhookConfigError

MAX_UPLINK_BYTES = 6 * 1024  # "at most 6 KB" per uplink
UPLINK_TIMEOUT_S = 30.0


async def _body(request: web.Request) -> Any:
    try:
        return json.loads(await request.read() or b"{}")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise web.HTTPBadRequest(text=json.dumps({"ok": False, "error": f"body is not valid JSON: {exc}"}),
                                 content_type="application/json") from None


def _device(request: web.Request) -> tuple[str, str] | web.Response:
    org, iccid = request.match_info["org"], request.match_info["iccid"]
    if not request.app[STATE_KEY].registry.has_device(org, iccid):
        return _bad(f"device {org}/{iccid} is not registered", status=404)
    return org, iccid


async def device_state(request: web.Request) -> web.Response:
    found = _device(request)
    if isinstance(found, web.Response):
        return found
    org, iccid = found
    await settled(request.app, org, iccid)
    state = request.app[STATE_KEY].registry.peek(org, iccid)
    return _json({"org": org, "iccid": iccid, "enabled": state.enabled, "connects": state.connects,
                  "ul_message_count": state.ul_message_count, "dl_message_count": state.dl_message_count})


def uplink_request(body: Any) -> tuple[str, str | None, int]:
    """{"payload": str, "topic": level-4 str (optional), "qos": 0|1 (default 0)} -> (payload, topic, qos)."""
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    unknown = sorted(set(body) - {"payload", "topic", "qos"})
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    payload = body.get("payload")
    if not isinstance(payload, str) or not payload:
        raise ValueError("payload must be a non-empty string")
    if len(payload.encode("utf-8", errors="surrogatepass")) > MAX_UPLINK_BYTES:
        raise ValueError(f"payload is over {MAX_UPLINK_BYTES} bytes (devices send at most 6 KB)")
    topic = body.get("topic")
    if topic is not None:
        if not isinstance(topic, str) or not topic or any(c in topic for c in "/+#\x00"):
            raise ValueError("topic must be one topic level (no '/', '+', '#' or NUL), e.g. \"status\"")
        if topic == "sub":
            raise ValueError("topic 'sub' is the devices' downlink level")
    qos = body.get("qos", 0)
    if isinstance(qos, bool) or qos not in (0, 1):
        raise ValueError("qos must be 0 or 1")
    return payload, topic, qos


async def device_uplink(request: web.Request) -> web.Response:
    """The device publishes an uplink over MQTT; 200 once Monoz Link (the emulator) has stored it."""
    found = _device(request)
    if isinstance(found, web.Response):
        return found
    org, iccid = found
    fleet = request.app[FLEET_KEY]
    if fleet is None:
        return _no_mqtt()
    try:
        payload, level4, qos = uplink_request(await _body(request))
    except ValueError as exc:
        return _bad(str(exc))
    await settled(request.app, org, iccid)
    if not request.app[STATE_KEY].registry.enabled(org, iccid):
        return _bad(f"the SIM of {iccid} is disabled: the device is offline", status=409)
    topic = f"/{org}/{iccid}" + (f"/{level4}" if level4 else "")
    uplinks = request.app[UPLINKS_KEY]
    stored = uplinks.expect(org, topic, payload)
    try:
        await fleet.command("publish", messages=[[topic, payload, qos]])
        record = await asyncio.wait_for(stored, UPLINK_TIMEOUT_S)
    except DeviceError as exc:
        return _bad(f"the device could not publish: {exc}", status=500)
    except asyncio.TimeoutError:
        return _bad(f"the uplink was not stored within {UPLINK_TIMEOUT_S} s", status=504)
    finally:
        uplinks.forget(org, topic, payload, stored)
    return _json({"record": record})


async def fleet_uplinks(request: web.Request) -> web.Response:
    """Many devices publish an uplink at once (a burst, as a periodic round is); 200 once all are stored.

    Body: {"org" (default: the first org), "iccids": [...] (default: every enabled device of the org),
    "payload", "topic", "qos"} as for one device.
    """
    registry = request.app[STATE_KEY].registry
    fleet = request.app[FLEET_KEY]
    if fleet is None:
        return _no_mqtt()
    body = await _body(request)
    if not isinstance(body, dict):
        return _bad("the body must be a JSON object")
    org = body.pop("org", registry.orgs[0])
    iccids = body.pop("iccids", None)
    if org not in registry.orgs:
        return _bad(f"unknown org {org!r}", status=404)
    if iccids is None:
        iccids = [iccid for iccid in registry.iccids(org) if registry.enabled(org, iccid)]
    if not isinstance(iccids, list) or not all(isinstance(i, str) and registry.has_device(org, i) for i in iccids):
        return _bad("iccids must be a list of registered ICCIDs of the org", status=404)
    try:
        payload, level4, qos = uplink_request(body)
    except ValueError as exc:
        return _bad(str(exc))
    await settled(request.app)
    offline = [iccid for iccid in iccids if not registry.enabled(org, iccid)]
    if offline:
        return _bad(f"the SIM of {offline[0]} is disabled: the device is offline", status=409)
    uplinks = request.app[UPLINKS_KEY]
    topics = [f"/{org}/{iccid}" + (f"/{level4}" if level4 else "") for iccid in iccids]
    waiting = [uplinks.expect(org, topic, payload) for topic in topics]
    try:
        await fleet.command("publish", messages=[[topic, payload, qos] for topic in topics])
        records = await asyncio.wait_for(asyncio.gather(*waiting), UPLINK_TIMEOUT_S)
    except DeviceError as exc:
        return _bad(f"the devices could not publish: {exc}", status=500)
    except asyncio.TimeoutError:
        return _bad(f"the uplinks were not all stored within {UPLINK_TIMEOUT_S} s", status=504)
    finally:
        for topic, fut in zip(topics, waiting, strict=True):
            uplinks.forget(org, topic, payload, fut)
    return _json({"records": records})


async def get_webhook(request: web.Request) -> web.Response:
    webhook = request.app[WEBHOOK_KEY]
    if request.query.get("wait_idle") not in (None, "", "0", "false"):
        timeout = min(_query_number(request, "timeout", 30.0) or 0.0, MAX_WAIT_S)
        await webhook.wait_idle(timeout)
    return _json(webhook.as_dict())


async def put_webhook(request: web.Request) -> web.Response:
    webhook = request.app[WEBHOOK_KEY]
    try:
        webhook.configure(await _body(request))
    except WebhookConfigError as exc:
        return _bad(str(exc))
    return _json(webhook.as_dict())


async def unblock_webhook(request: web.Request) -> web.Response:
    webhook = request.app[WEBHOOK_KEY]
    webhook.unblock()
    return _json(webhook.as_dict())


def add_routes(app: web.Application) -> None:
    p = CONTROL_PREFIX
    app.router.add_get(f"{p}/devices/{{org}}/{{iccid}}", device_state)
    app.router.add_post(f"{p}/devices/{{org}}/{{iccid}}/uplink", device_uplink)
    app.router.add_post(f"{p}/uplinks", fleet_uplinks)
    app.router.add_get(f"{p}/webhook", get_webhook)
    app.router.add_put(f"{p}/webhook", put_webhook)
    app.router.add_post(f"{p}/webhook/unblock", unblock_webhook)
