"""Wires broker, device fleet and HTTP app together; start, announce, stop."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import ssl
import sys
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from . import api, api_sim, control, control_devices
from .broker import EmbeddedBroker
from .devices import DeviceFleet, ReceivedStore
from .faults import FaultInjector
from .mqtt_client import MqttClient
from .state import VENDOR_EXAMPLE_ICCID, State, generated_iccids
from .uplinks import UplinkStore
from .webhook import WebhookPusher, WebhookSettings

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
    mqtt_broker: tuple[str, int] | None = None  # an external broker; None = the embedded one
    webhook: WebhookSettings = field(default_factory=WebhookSettings)
    uplink_interval: float = 0.0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def build_app(state: State, faults: FaultInjector, store: ReceivedStore, uplinks: UplinkStore,
              webhook: WebhookPusher, mqtt: MqttClient | None, fleet: DeviceFleet | None) -> web.Application:
    app = web.Application(middlewares=[control.loopback_only, api.drop_middleware], client_max_size=1024 * 1024)
    app[api.STATE_KEY] = state
    app[api.FAULTS_KEY] = faults
    app[api.MQTT_KEY] = mqtt
    app[api.FLEET_KEY] = fleet
    app[api.UPLINKS_KEY] = uplinks
    app[api.WEBHOOK_KEY] = webhook
    app[api.STOPPING_KEY] = asyncio.Event()
    app[control.STORE_KEY] = store
    api.add_routes(app)
    api_sim.add_routes(app)
    control.add_routes(app)
    control_devices.add_routes(app)
    # Anything else under the API prefix answers like the vendor would: JSON 404.
    app.router.add_route("*", api.API_PREFIX + "/{tail:.*}", api.api_not_found)
    return app


def uplink_handler(state: State, uplinks: UplinkStore, webhook: WebhookPusher) -> Any:
    """What Monoz Link does with an uplink its broker got: store it, count it, push it to the webhook."""

    def accept(topic: str, payload: str, _qos: int) -> None:
        parts = topic.split("/")
        if len(parts) not in (3, 4) or parts[0] or not state.registry.has_device(parts[1], parts[2]):
            state.stats.uplinks_ignored += 1  # the vendor's broker acknowledges, then drops it silently
            return
        org, iccid = parts[1], parts[2]
        ticks, record = uplinks.record(org, iccid, topic, payload)
        state.registry.device(org, iccid).ul_message_count += 1
        webhook.push(org, ticks, record)

    return accept


async def periodic_uplinks(interval: float, state: State, fleet: DeviceFleet) -> None:
    """Every enabled device publishes `{"seq": n}` on /ORG/ICCID every `interval` seconds."""
    seq = 0
    while True:
        await asyncio.sleep(interval)
        seq += 1
        payload = json.dumps({"seq": seq})
        registry = state.registry
        messages = [[f"/{org}/{iccid}", payload, 0] for org in registry.orgs for iccid in registry.iccids(org)
                    if registry.enabled(org, iccid)]
        for start in range(0, len(messages), 1000):
            fleet.send("publish", messages=messages[start:start + 1000])


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
    uplinks = UplinkStore()
    webhook = WebhookPusher(config.webhook, uplinks)

    broker: EmbeddedBroker | None = None
    mqtt: MqttClient | None = None
    fleet: DeviceFleet | None = None
    runner: web.AppRunner | None = None
    tasks: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app: web.Application | None = None
    mqtt_host: str | None = None
    mqtt_port: int | None = None
    try:
        await webhook.start()
        if config.mqtt:
            if config.mqtt_broker is None:
                broker = EmbeddedBroker(config.host, config.mqtt_port)
                mqtt_host, mqtt_port = config.host, await broker.start()
            else:
                mqtt_host, mqtt_port = config.mqtt_broker
            mqtt = MqttClient(f"monoz-link-{os.getpid()}-{uuid.uuid4().hex[:8]}")
            await mqtt.connect(mqtt_host, mqtt_port)
            fleet = DeviceFleet(mqtt_host, mqtt_port, store, uplink_handler(state, uplinks, webhook))
            await fleet.start()
            if config.uplink_interval > 0:
                tasks.append(asyncio.create_task(periodic_uplinks(config.uplink_interval, state, fleet)))
        app = build_app(state, faults, store, uplinks, webhook, mqtt, fleet)
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
            "mqtt_host": mqtt_host,
            "mqtt_port": mqtt_port,
            "mqtt_broker": None if not config.mqtt else ("embedded" if broker is not None else "external"),
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
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if runner is not None:
            await runner.cleanup()
        if fleet is not None:
            await fleet.stop()
        if mqtt is not None:
            await mqtt.disconnect()
        if broker is not None:
            await broker.stop()
        await webhook.stop()
        if config.ready_file:
            try:
                os.unlink(config.ready_file)
            except OSError:
                pass
