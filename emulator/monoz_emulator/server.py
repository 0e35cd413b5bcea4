"""Wires broker, device fleet and HTTP app together; start, announce, stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import ssl
import sys
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import api, control
from .broker import EmbeddedBroker
from .devices import DeviceFleet, ReceivedStore
from .faults import FaultInjector
from .state import VENDOR_EXAMPLE_ICCID, State, generated_iccids

LOG = logging.getLogger(__name__)


@dataclass
class Config:
    host: str = "127.0.0.1"
    port: int = 8580
    mqtt_port: int = 0
    orgs: dict[str, str] = field(default_factory=lambda: {"DEMO": "demo-api-key"})
    devices: int = 10
    device_prefix: str = "89882806660"
    extra_devices: list[str] = field(default_factory=list)
    faults: dict[str, Any] = field(default_factory=dict)
    tls_cert: str | None = None
    tls_key: str | None = None
    ready_file: str | None = None
    mqtt: bool = True


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def build_app(state: State, faults: FaultInjector, store: ReceivedStore, broker: EmbeddedBroker | None,
              mqtt_addr: tuple[str, int | None]) -> web.Application:
    app = web.Application(middlewares=[control.loopback_only, api.drop_middleware], client_max_size=1024 * 1024)
    app[api.STATE_KEY] = state
    app[api.FAULTS_KEY] = faults
    app[api.BROKER_KEY] = broker
    app[api.STOPPING_KEY] = asyncio.Event()
    app[control.STORE_KEY] = store
    app[control.MQTT_ADDR_KEY] = mqtt_addr
    api.add_routes(app)
    control.add_routes(app)
    # Anything else under the API prefix answers like the vendor would: JSON 404.
    app.router.add_route("*", api.API_PREFIX + "/{tail:.*}", api.api_not_found)
    return app


async def run(config: Config) -> None:
    loop = asyncio.get_running_loop()
    state = State()
    iccids = generated_iccids(config.devices, config.device_prefix) + [VENDOR_EXAMPLE_ICCID, *config.extra_devices]
    for org, key in config.orgs.items():
        state.registry.add_org(org, key)
        state.registry.add_devices(org, iccids)
    faults = FaultInjector()
    faults.apply(config.faults, replace=True)
    store = ReceivedStore(loop)

    broker: EmbeddedBroker | None = None
    fleet: DeviceFleet | None = None
    runner: web.AppRunner | None = None
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app: web.Application | None = None
    try:
        if config.mqtt:
            broker = EmbeddedBroker(config.host, config.mqtt_port)
            await broker.start()
            fleet = DeviceFleet(config.host, broker.port or 0, store)
            await fleet.start()
        app = build_app(state, faults, store, broker, (config.host, broker.port if broker else None))
        ssl_context = None
        if config.tls_cert:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(config.tls_cert, config.tls_key)
        # access_log=None: per-request logging costs ~20% of throughput.
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, config.host, config.port, ssl_context=ssl_context, backlog=1024)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        scheme = "https" if ssl_context else "http"
        base = f"{scheme}://{_url_host(config.host)}:{port}"
        first_org = next(iter(config.orgs))
        ready = {
            "api_url": f"{base}{api.API_PREFIX}",
            "control_url": f"{base}{control.CONTROL_PREFIX}",
            "mqtt_host": config.host if broker else None,
            "mqtt_port": broker.port if broker else None,
            "pid": os.getpid(),
            "org": first_org,
            "api_key": config.orgs[first_org],
            "devices": state.registry.device_count(first_org),
        }
        line = json.dumps(ready)
        if config.ready_file:
            tmp = f"{config.ready_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(line + "\n")
            os.replace(tmp, config.ready_file)  # readers never see a half-written file
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        await stop.wait()
    finally:
        if app is not None:
            app[api.STOPPING_KEY].set()  # release "hang" faults
        if runner is not None:
            await runner.cleanup()
        if fleet is not None:
            await fleet.stop()
        if broker is not None:
            await broker.stop()
        if config.ready_file:
            try:
                os.unlink(config.ready_file)
            except OSError:
                pass
