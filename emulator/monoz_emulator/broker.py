"""The embedded MQTT broker (amqtt 0.12.1), for machines without mosquitto.

It runs in the emulator's event loop, bound to loopback only. The emulator
talks to it exactly as to an external broker: as an MQTT client over TCP
(mqtt_client.py), and the devices subscribe over TCP too. Eclipse Mosquitto
is the reference (`--mqtt-broker`); the cross-check test
(emulator/tests/test_emulator_brokers.py) runs the same scenarios on both.

Two amqtt 0.12.1 behaviours differ from MQTT 3.1.1 and from mosquitto, and
are corrected here; the cross-check fails without any part of either:

* QoS downgrade (MQTT 3.1.1 section 3.8.4): a client's PUBLISH is broadcast
  without its QoS, so every subscriber got the *subscription's* QoS: a QoS 0
  downlink reached a device subscribed at QoS 1 as QoS 1. We carry the
  publish QoS along, and, as amqtt's broadcast would force that QoS on every
  subscriber, deliver at min(publish QoS, subscription QoS).
* Retained messages: on CONNECT amqtt sends a new client the retained
  messages matching *every other client's* filters (at QoS 0, before the
  client subscribed to anything), so a reconnecting device got every other
  device's retained messages; and on SUBSCRIBE it sends them at
  `retained QoS or subscription QoS`, which turns a QoS 0 retained message
  into QoS 1. We send a session only the retained messages of its own
  filters, at min(retained QoS, subscription QoS).

Two costs are cut, as device reconnections (SIM resets) open connections
at API speed: amqtt logs the repr of its whole subscription table after every
SUBSCRIBE, built even with debug logging off, and it drops a clean session's
subscriptions only in a once-a-second sweep, while every new connection and
every message walks the table. Here the table's repr is short and a clean
session's subscriptions go when it disconnects, as MQTT says they do.

Differences left (mosquitto is the truth, see emulator/README.md): amqtt
has no in-flight window, so it never lets a QoS 0 message overtake queued
QoS 1 ones as mosquitto does for a slow subscriber, and it gives up on a QoS 1
delivery after 5 s without PUBACK.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from typing import Any

from amqtt.broker import Broker
from amqtt.mqtt.constants import QOS_1, QOS_2

LOG = logging.getLogger(__name__)

# QoS of the client PUBLISH being handled (per asyncio task).
_PUBLISH_QOS: contextvars.ContextVar[int | None] = contextvars.ContextVar("monoz_publish_qos", default=None)


class _Subscriptions(dict):  # type: ignore[type-arg]
    """amqtt's topic filter -> subscribers table, with a repr that does not list them."""

    def __repr__(self) -> str:
        return f"<{len(self)} topic filters>"


class _EmulatorBroker(Broker):
    """amqtt's Broker with MQTT's QoS rules for live and retained deliveries."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._subscriptions = _Subscriptions(self._subscriptions)

    async def _handle_disconnect(self, client_session: Any, handler: Any, disconnect_waiter: Any) -> None:
        await super()._handle_disconnect(client_session, handler, disconnect_waiter)
        if client_session.clean_session:
            await self._del_all_subscriptions(client_session)

    async def _handle_message_delivery(self, client_session: Any, handler: Any, wait_deliver: Any) -> bool:
        app_message = wait_deliver.result()
        token = _PUBLISH_QOS.set(app_message.qos if app_message is not None else None)
        try:
            return await super()._handle_message_delivery(client_session, handler, wait_deliver)
        finally:
            _PUBLISH_QOS.reset(token)

    async def _broadcast_message(self, session: Any, topic: str | None, data: bytes | bytearray | None,
                                 force_qos: int | None = None) -> None:
        if force_qos is None:
            force_qos = _PUBLISH_QOS.get()
        await super()._broadcast_message(session, topic, data, force_qos)

    async def _run_broadcast(self, running_tasks: deque[asyncio.Task[Any]]) -> None:
        # amqtt's own loop, except that the QoS is the lower of publish and
        # subscription (amqtt forces the publish QoS on everyone); topic-filter
        # plugins are not configured, so their round trip is left out.
        broadcast = await self._broadcast_queue.get()
        topic, data, pub_qos = broadcast["topic"], broadcast["data"], broadcast.get("qos")
        for topic_filter, subscriptions in list(self._subscriptions.items()):
            if not self._matches(topic, topic_filter):
                continue
            for target_session, sub_qos in list(subscriptions):
                qos = sub_qos if pub_qos is None else min(pub_qos, sub_qos)
                if target_session.transitions.state != "connected":
                    # Persistent (clean_session=False) sessions keep QoS>0 messages.
                    if not target_session.clean_session and qos in (QOS_1, QOS_2) and not target_session.is_anonymous:
                        await self._retain_broadcast_message(broadcast, qos, target_session)
                    continue
                handler = self._get_handler(target_session)
                if handler:
                    running_tasks.append(asyncio.ensure_future(handler.mqtt_publish(topic, data, qos, retain=False)))

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Any) -> None:
        topic_filter, _qos = subscription
        sub_qos = next(
            (q for s, q in self._subscriptions.get(topic_filter, ()) if s.client_id == session.client_id),
            None,
        )
        handler = self._get_handler(session)
        if sub_qos is None or handler is None:
            return  # called on CONNECT for other clients' filters: not this session's business
        tasks = [
            asyncio.ensure_future(handler.mqtt_publish(
                retained.topic, retained.data, sub_qos if retained.qos is None else min(sub_qos, retained.qos),
                retain=True))
            for topic, retained in list(self._retained_messages.items())
            if self._matches(topic, topic_filter)
        ]
        if tasks:
            await asyncio.wait(tasks)


class EmbeddedBroker:
    """Start and stop the in-process broker."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._broker: _EmulatorBroker | None = None

    async def start(self) -> int:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.requested_port}"}},
            # Only anonymous auth: the $SYS and logging plugins cost time per packet.
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = _EmulatorBroker(config)
        await self._broker.start()
        server = self._broker._servers["default"].instance
        self.port = server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self._broker is not None:
            try:
                await asyncio.wait_for(self._broker.shutdown(), timeout=10)
            except Exception:  # noqa: BLE001 - shutdown must not mask the exit path
                LOG.exception("broker shutdown failed")
            self._broker = None
