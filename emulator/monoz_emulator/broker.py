"""Embedded MQTT broker (amqtt 0.12.1) that the emulator publishes downlinks to.

The broker runs in the emulator's own asyncio loop, bound to loopback only.
The HTTP handler hands a message to the broker in-process (no extra MQTT hop):
once `publish()` returns, the message is in the broker's broadcast queue and,
when retained, in its retained store, so "HTTP 200 seen" implies "message is
in the broker".

amqtt 0.12.1 quirks worked around here (see `_EmulatorBroker`):

* A client PUBLISH is broadcast without its QoS, and an internal broadcast
  forces its QoS on every subscriber, so subscribers got the *subscription*
  QoS (or the forced one) instead of min(publish QoS, subscription QoS) as
  MQTT 3.1.1 section 3.8.4 requires. We carry the publish QoS through a
  context variable and deliver at the minimum.
* The stock broadcast loop builds a task plus an `asyncio.wait()` per
  message and formats debug f-strings (including the payload) even when
  debug logging is off; at thousands of messages per second that was the
  bottleneck. The replacement loop dispatches straight from the queue.
* On CONNECT, retained messages were sent for every filter of *any* client,
  so a new clean-session subscriber got each retained message twice (once
  at QoS 0 before it even subscribed). Only the session's own filters count.
* Retained messages were re-sent at `retained.qos or sub_qos`, so a QoS 0
  retained message reached a QoS 1 subscriber as QoS 1.
* Topic-filter plugins are not loaded, so the per-target
  `_topic_filtering` plugin round trip is skipped.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from typing import Any

from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
from amqtt.broker import Broker
from amqtt.mqtt.constants import QOS_1, QOS_2

LOG = logging.getLogger(__name__)

# QoS of the client PUBLISH currently being handled (per asyncio task).
_PUBLISH_QOS: contextvars.ContextVar[int | None] = contextvars.ContextVar("monoz_publish_qos", default=None)


class _CorkingWriter(StreamWriterAdapter):
    """Coalesce all packets written to one connection in a loop iteration into one send().

    On this kind of VM a loopback send() costs ~100-200 us of kernel time; a
    burst of PUBLISHes to the device subscriber used to cost one send each.
    Order is kept (one buffer per connection) and drain() still applies the
    transport's flow control once the data is handed over.
    """

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__(writer)
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()

    def write(self, data: bytes) -> None:
        if self.is_closed:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(bytes(data))

    def _flush(self) -> None:
        if self._pending and not self._writer.is_closing():
            self._writer.write(b"".join(self._pending))
        self._pending.clear()

    async def drain(self) -> None:
        if not self.is_closed:
            self._flush()
            await self._writer.drain()

    async def close(self) -> None:
        self._flush()
        await super().close()


class _EmulatorBroker(Broker):
    """amqtt Broker with correct QoS downgrade and a faster broadcast loop."""

    delivery_failures = 0

    async def stream_connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, listener_name: str) -> None:
        await self._client_connected(listener_name, StreamReaderAdapter(reader), _CorkingWriter(writer))

    async def _handle_message_delivery(self, client_session: Any, handler: Any, wait_deliver: Any) -> bool:
        app_message = wait_deliver.result()
        token = _PUBLISH_QOS.set(app_message.qos if app_message is not None else None)
        try:
            return await super()._handle_message_delivery(client_session, handler, wait_deliver)
        finally:
            _PUBLISH_QOS.reset(token)

    async def _broadcast_message(
        self,
        session: Any,
        topic: str | None,
        data: bytes | bytearray | None,
        force_qos: int | None = None,
    ) -> None:
        if force_qos is None:
            force_qos = _PUBLISH_QOS.get()
        # Put without awaiting a possibly full queue: the queue is unbounded.
        broadcast: dict[str, Any] = {"session": session, "topic": topic, "data": data}
        if force_qos is not None:
            broadcast["qos"] = force_qos
        self._broadcast_queue.put_nowait(broadcast)

    async def _broadcast_loop(self) -> None:
        running: deque[asyncio.Task[Any]] = self._tasks_queue
        queue = self._broadcast_queue
        try:
            while True:
                broadcast = await queue.get()
                while running and running[0].done():
                    self._reap(running.popleft())
                await self._dispatch(broadcast, running)
        finally:
            for task in running:
                if not task.done():
                    task.cancel()

    def _reap(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # Typically a PUBACK that took longer than amqtt's fixed 5 s: the
            # PUBLISH itself was already written to the subscriber's socket.
            type(self).delivery_failures += 1
            LOG.warning("MQTT delivery task failed: %r", exc)

    async def _dispatch(self, broadcast: dict[str, Any], running: deque[asyncio.Task[Any]]) -> None:
        topic = broadcast["topic"]
        data = broadcast["data"]
        pub_qos = broadcast.get("qos")
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
                    running.append(asyncio.ensure_future(handler.mqtt_publish(topic, data, qos, retain=False)))

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int], session: Any) -> None:
        # On CONNECT, amqtt walks *every* filter any client subscribed to and
        # sends matching retained messages to the new client at QoS 0, even when
        # that client (clean session) has no subscription at all: a late
        # subscriber then saw each retained message twice. Only send for filters
        # this session really holds, at the QoS it subscribed with.
        topic_filter, _qos = subscription
        sub_qos = next(
            (q for s, q in self._subscriptions.get(topic_filter, ()) if s.client_id == session.client_id),
            None,
        )
        if sub_qos is None:
            return
        handler = self._get_handler(session)
        if handler is None:
            return
        tasks = []
        for topic, retained in list(self._retained_messages.items()):
            if self._matches(topic, topic_filter):
                # amqtt used `retained.qos or qos`, turning a QoS 0 retained message into QoS 1.
                qos = sub_qos if retained.qos is None else min(sub_qos, retained.qos)
                tasks.append(asyncio.ensure_future(handler.mqtt_publish(retained.topic, retained.data, qos, retain=True)))
        if tasks:
            await asyncio.wait(tasks)

    async def _shutdown_broadcast_loop(self) -> None:
        task = self._broadcast_task
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class EmbeddedBroker:
    """Start/stop the in-process broker and publish into it."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.port: int | None = None
        self._broker: _EmulatorBroker | None = None
        self.retained_topics: set[str] = set()

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

    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Hand a message to the broker exactly as a client PUBLISH would be."""
        broker = self._require()
        if retain:
            await broker.retain_message(None, topic, payload, qos)
            self.retained_topics.add(topic)
        await broker._broadcast_message(None, topic, payload, qos)

    def clear_retained(self) -> int:
        broker = self._require()
        count = len(broker.retained_messages)
        broker.retained_messages.clear()
        self.retained_topics.clear()
        return count

    def retained(self) -> dict[str, bytes]:
        return {topic: bytes(msg.data) for topic, msg in self._require().retained_messages.items()}

    @property
    def delivery_failures(self) -> int:
        return _EmulatorBroker.delivery_failures

    async def stop(self) -> None:
        if self._broker is not None:
            try:
                await asyncio.wait_for(self._broker.shutdown(), timeout=10)
            except Exception:  # noqa: BLE001 - shutdown must not mask the exit path
                LOG.exception("broker shutdown failed")
            self._broker = None

    def _require(self) -> _EmulatorBroker:
        if self._broker is None:
            raise RuntimeError("broker not started")
        return self._broker
