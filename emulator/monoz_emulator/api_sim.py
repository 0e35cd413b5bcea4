"""The SIM and data endpoints: device details, SIM enable/disable, SIM reset, RawData, FailedData.

They share api.py's pipeline (latency, rate limit, faults, key, body) and add:
- a disabled SIM's device is offline: the device process drops what the broker
  delivers for it, and nothing reaches the device until the SIM is enabled
  again; enabling it makes the device connect and subscribe anew, so the
  broker sends it the retained messages again;
- a reset of an enabled SIM makes its device disconnect, reconnect and
  re-subscribe (the same re-subscription). As Monoz does, the API answers
  at once and the device reconnects in the background (devices.py batches
  the reconnections); the emulator's own views of a device (control
  endpoints, later publishes to it, SIM changes) wait until its
  reconnection is over, so a test sees the reconnection and the retained
  messages as soon as the reset is answered. A disabled SIM has no
  connectivity to reset: 200, and the device stays offline.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from . import validation_ops
from .api import API_PREFIX, FLEET_KEY, STATE_KEY, UPLINKS_KEY, endpoint, error_response, not_found, success
from .devices import DeviceError

LOG = logging.getLogger(__name__)


def _registered(request: web.Request, org: str, iccid: str) -> bool:
    return request.app[STATE_KEY].registry.has_device(org, iccid)


async def device_detail(request: web.Request, org: str, _body: Any) -> web.Response:
    iccid = validation_ops.check_iccid(request.match_info["iccid"])
    if not _registered(request, org, iccid):
        return not_found(iccid)
    return success("FetchSuccess", request.app[STATE_KEY].registry.detail(org, iccid))


async def sim_enable_get(request: web.Request, org: str, _body: Any) -> web.Response:
    iccid = validation_ops.check_iccid(request.match_info["iccid"])
    if not _registered(request, org, iccid):
        return not_found(iccid)
    return success("FetchSuccess", {"Enabled": request.app[STATE_KEY].registry.enabled(org, iccid)})


async def sim_enable_put(request: web.Request, org: str, body: Any) -> web.Response:
    iccid, enable = validation_ops.sim_enable(body)
    if not _registered(request, org, iccid):
        return not_found(iccid)
    device = request.app[STATE_KEY].registry.device(org, iccid)
    fleet = request.app[FLEET_KEY]
    if fleet is not None:
        # A reset still under way would bring the device back online behind this change.
        await fleet.settled(f"{org}/{iccid}")
    if device.enabled != enable:
        try:
            if fleet is not None:
                if enable:
                    await fleet.reconnect(f"{org}/{iccid}", online_on_failure=False)
                else:
                    await fleet.command("offline", devices=[f"{org}/{iccid}"])
        except DeviceError as exc:
            LOG.error("SIM %s: the device did not follow: %s", iccid, exc)
            return error_response(500, f"SIM state change failed: {exc}")
        if enable:
            device.connects += 1
        device.enabled = enable
        device.updated = time.time()
    return success("UpdateSuccess")


def _count_reconnect(device: Any, iccid: str) -> Callable[[asyncio.Future[None]], None]:
    def done(fut: asyncio.Future[None]) -> None:
        if fut.cancelled():
            return
        exc = fut.exception()
        if exc is not None:
            LOG.error("SIM %s: the device did not reconnect after its reset: %s", iccid, exc)
        else:
            device.connects += 1

    return done


async def sim_reset(request: web.Request, org: str, body: Any) -> web.Response:
    iccid = validation_ops.sim_reset(body)
    if not _registered(request, org, iccid):
        return not_found(iccid)
    device = request.app[STATE_KEY].registry.device(org, iccid)
    if device.enabled:
        fleet = request.app[FLEET_KEY]
        if fleet is not None:
            fleet.reconnect(f"{org}/{iccid}").add_done_callback(_count_reconnect(device, iccid))
        else:
            device.connects += 1
    return success("UpdateSuccess")


def _data(kind: str) -> Any:
    async def handler(request: web.Request, org: str, body: Any) -> web.Response:
        start, end = validation_ops.data_window(body)
        return success("FetchSuccess", request.app[UPLINKS_KEY].window(kind, org, start, end))

    return handler


def add_routes(app: web.Application) -> None:
    p = API_PREFIX + "/{org}"
    app.router.add_get(p + "/Device/Sim/Detail/{iccid}",
                       endpoint("GET Device/Sim/Detail", device_detail, has_body=False))
    app.router.add_get(p + "/Sim/Enable/{iccid}", endpoint("GET Sim/Enable", sim_enable_get, has_body=False))
    app.router.add_put(p + "/Sim/Enable", endpoint("PUT Sim/Enable", sim_enable_put, has_body=True))
    app.router.add_put(p + "/Sim/Reset", endpoint("PUT Sim/Reset", sim_reset, has_body=True))
    app.router.add_post(p + "/RawData", endpoint("POST RawData", _data("raw"), has_body=True))
    app.router.add_post(p + "/FailedData", endpoint("POST FailedData", _data("failed"), has_body=True))
