"""A small asyncio MQTT 3.1.1 client: how the emulator (the "Monoz Link" side) talks to the broker.

The emulator publishes every accepted downlink as an ordinary MQTT client,
to the embedded broker or to an external one such as mosquitto, so both
brokers see exactly the same traffic. It runs in the emulator's own event
loop: a client on a thread (paho) competes with aiohttp for the GIL.

Only what the emulator needs: CONNECT (clean session), PUBLISH at QoS 0/1,
PUBACK, PINGREQ/PINGRESP, DISCONNECT. `publish()` at QoS 1 returns once the
broker's PUBACK arrived; `flush()` returns once the broker has answered a
PINGREQ sent after everything written so far, which, as brokers handle one
connection's packets in order, means it has every earlier QoS 0 publish too.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
from collections import deque

LOG = logging.getLogger(__name__)

CONNECT, CONNACK, PUBLISH, PUBACK = 0x10, 0x20, 0x30, 0x40
PINGREQ, PINGRESP, DISCONNECT = 0xC0, 0xD0, 0xE0


class MqttError(ConnectionError):
    """The broker refused us, closed the connection or did not answer in time."""


def _utf8(text: str) -> bytes:
    data = text.encode("utf-8")
    return struct.pack("!H", len(data)) + data


def _remaining_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + _remaining_length(len(body)) + body


class MqttClient(asyncio.Protocol):
    """One connection to the broker; QoS 1 publishes are acknowledged before `publish()` returns."""

    def __init__(self, client_id: str, keepalive: int = 60, ack_timeout: float = 30.0) -> None:
        self.client_id = client_id
        self.keepalive = keepalive
        self.ack_timeout = ack_timeout
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._pending: list[bytes] = []
        self._connack: asyncio.Future[int] | None = None
        self._acks: dict[int, asyncio.Future[None]] = {}
        self._pings: deque[asyncio.Future[None]] = deque()
        self._unsent_ping: asyncio.Future[None] | None = None  # a PINGREQ still in self._pending
        self._ids = itertools.cycle(range(1, 65536))
        self._keepalive_task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self.address: tuple[str, int] | None = None

    # -- connection -------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def connect(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.address = (host, port)
        await asyncio.wait_for(self._connect(), timeout)

    async def _connect(self) -> None:
        assert self.address is not None
        await self._loop.create_connection(lambda: self, *self.address)
        self._connack = self._loop.create_future()
        # protocol name, level 4 (3.1.1), flags: clean session
        body = _utf8("MQTT") + bytes((4, 0x02)) + struct.pack("!H", self.keepalive) + _utf8(self.client_id)
        self._write(_packet(CONNECT, body))
        code = await self._connack
        if code != 0:
            self.close()
            raise MqttError(f"the broker refused the connection (CONNACK return code {code})")
        if self.keepalive:
            self._keepalive_task = asyncio.ensure_future(self._keep_alive())

    async def ensure_connected(self) -> None:
        """Reconnect after a lost connection (the broker restarted); no-op while connected."""
        if self.connected:
            return
        async with self._lock:
            if not self.connected:
                if self.address is None:
                    raise MqttError("not connected")
                await asyncio.wait_for(self._connect(), 10.0)

    async def _keep_alive(self) -> None:
        while self.connected:
            await asyncio.sleep(self.keepalive / 2)
            if self.connected:
                self._write(bytes((PINGREQ, 0)))
                self._pings.append(self._loop.create_future())

    def close(self) -> None:
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()
        if self._transport is not None:
            self._flush()
            self._transport.close()

    async def disconnect(self) -> None:
        if self.connected:
            self._write(bytes((DISCONNECT, 0)))
        self.close()

    # -- publishing -------------------------------------------------------
    async def publish(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        await self.ensure_connected()
        first = PUBLISH | (qos << 1) | (1 if retain else 0)
        if qos == 0:
            self._write(_packet(first, _utf8(topic) + payload))
            return
        packet_id = next(self._ids)
        while packet_id in self._acks:  # 65,535 in flight at once: wait for the oldest
            await asyncio.sleep(0)
            packet_id = next(self._ids)
        ack: asyncio.Future[None] = self._loop.create_future()
        self._acks[packet_id] = ack
        self._write(_packet(first, _utf8(topic) + struct.pack("!H", packet_id) + payload))
        try:
            await asyncio.wait_for(ack, self.ack_timeout)
        except asyncio.TimeoutError:
            raise MqttError(f"no PUBACK from the broker within {self.ack_timeout} s") from None
        finally:
            self._acks.pop(packet_id, None)

    async def deliver(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        """Publish and return once the broker has the message, at QoS 0 as well as at QoS 1."""
        await self.publish(topic, payload, qos, retain)
        if qos == 0:
            await self.flush()

    async def flush(self) -> None:
        """Return once the broker has handled every packet written before this call."""
        await self.ensure_connected()
        pong = self._unsent_ping
        if pong is None:
            # Flushes in one loop turn share one PINGREQ: it follows all of their publishes.
            pong = self._unsent_ping = self._loop.create_future()
            self._pings.append(pong)
            self._write(bytes((PINGREQ, 0)))
        try:
            await asyncio.wait_for(asyncio.shield(pong), self.ack_timeout)
        except asyncio.TimeoutError:
            raise MqttError(f"no PINGRESP from the broker within {self.ack_timeout} s") from None

    # -- asyncio.Protocol ---------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._buffer.clear()
        self._pending.clear()
        error = MqttError(f"connection to the MQTT broker lost: {exc or 'closed'}")
        for fut in [*self._acks.values(), *self._pings, *([self._connack] if self._connack else [])]:
            if not fut.done():
                fut.set_exception(error)
                fut.exception()  # retrieved: a lost keepalive ping is nobody's error
        self._pings.clear()
        self._unsent_ping = None
        if self._keepalive_task is not None:
            self._keepalive_task.cancel()

    def data_received(self, data: bytes) -> None:
        buf = self._buffer
        buf += data
        while len(buf) >= 2:
            length, multiplier, pos = 0, 1, 1
            while True:
                if pos >= len(buf):
                    return
                byte = buf[pos]
                length += (byte & 0x7F) * multiplier
                multiplier *= 128
                pos += 1
                if not byte & 0x80:
                    break
            end = pos + length
            if len(buf) < end:
                return
            self._handle(buf[0], bytes(buf[pos:end]))
            del buf[:end]

    def _handle(self, first: int, body: bytes) -> None:
        kind = first & 0xF0
        if kind == PUBACK:
            ack = self._acks.get(struct.unpack("!H", body[:2])[0])
            if ack is not None and not ack.done():
                ack.set_result(None)
        elif kind == PINGRESP:
            if self._pings:
                pong = self._pings.popleft()
                if not pong.done():
                    pong.set_result(None)
        elif kind == CONNACK:
            if self._connack is not None and not self._connack.done():
                self._connack.set_result(body[1] if len(body) > 1 else 255)
        else:
            # Nothing is subscribed on this connection, so nothing else should come.
            LOG.warning("unexpected MQTT packet type 0x%02x from the broker", first)

    # -- writing ------------------------------------------------------------
    def _write(self, data: bytes) -> None:
        if self._transport is None:
            raise MqttError("not connected to the MQTT broker")
        # Packets written in one loop turn leave in one send(): a burst of
        # publishes costs one system call, not one each.
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        self._unsent_ping = None
        if self._pending and self._transport is not None and not self._transport.is_closing():
            self._transport.write(b"".join(self._pending))
        self._pending.clear()
