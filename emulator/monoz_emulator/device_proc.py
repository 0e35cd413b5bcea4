"""The simulated devices, run as a child process of the emulator.

    python -m monoz_emulator.device_proc HOST PORT

Every device-side MQTT connection is a paho-mqtt client, all of them driven
by one select() loop in this process (the second core, away from the
emulator's event loop):

* the fleet connection stands for every device's live session: subscribed at
  QoS 1 to `/+/+/sub/#` (which also matches the bare `/ORG/ICCID/sub`), it
  receives what the broker delivers to any device, and it publishes the
  devices' uplinks on `/ORG/ICCID[/level4]`. One connection instead of one
  per device keeps 10k-device fleets cheap while every message still travels
  over TCP through the broker;
* the uplink collector is Monoz Link's side of uplinks: subscribed to `/+/+`
  and `/+/+/+`, it hands every uplink to the emulator for storage;
* short-lived connections: devices reconnecting (SIM reset, SIM enabled)
  subscribe `/ORG/ICCID/sub/#` on a new connection, so the broker sends them
  the retained messages again; the devices of one reconnect command share
  that connection and its one SUBSCRIBE (the emulator batches the devices
  queued meanwhile), as the fleet connection stands for every device's live
  session. A probe does the same for any filter (late subscribe, listing the
  broker's retained messages).

A device whose SIM is disabled is offline: what the fleet connection receives
for it is dropped, as it would never reach a device without connectivity.

Protocol with the emulator (one JSON document per line):
  stdout: `{"ready": true}` once fleet and collector are subscribed; then
    `[topic, payload, qos, retain]` for every message a device received,
    `{"up": [topic, payload, qos]}` for every uplink the collector got,
    `{"ack": id, ...}` answering a command;
  stdin: commands `{"id", "op", ...}`, see `Child.command`. EOF on stdin means
    the emulator is gone, and this process exits: it never outlives its parent.
"""

from __future__ import annotations

import json
import os
import select
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

FLEET_FILTER = "/+/+/sub/#"
UPLINK_FILTERS = ("/+/+", "/+/+/+")  # /ORG/ICCID and /ORG/ICCID/level4
OP_TIMEOUT_S = 30.0


def new_client(prefix: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{prefix}-{uuid.uuid4().hex[:12]}",
                         clean_session=True)
    # 0 = unlimited: never drop or hold back on our side during bursts.
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(0)
    return client


def device_of(topic: str) -> str | None:
    """`/ORG/ICCID/sub[/...]` -> "ORG/ICCID"; None for any other topic."""
    parts = topic.split("/", 4)
    if len(parts) < 4 or parts[0] != "" or parts[3] != "sub":
        return None
    return f"{parts[1]}/{parts[2]}"


class Subscriber:
    """A short-lived connection: subscribe filters, collect their retained messages, hang up.

    The end of the retained burst is found without a timer: after the SUBACK
    for the filter, it subscribes a private sentinel topic and publishes one
    QoS 1 message there. A broker sends a subscription's retained messages
    before it handles the connection's next packet, so once the sentinel comes
    back every retained message is in.
    """

    def __init__(self, child: Child, topic_filters: list[str],
                 on_subscribed: Callable[[], None] | None, on_retained: Callable[[mqtt.MQTTMessage], None],
                 on_done: Callable[[list[str]], None]) -> None:
        self.filters = topic_filters
        self.sentinel = f"_emulator/sentinel/{uuid.uuid4().hex}"  # matches no device or uplink filter
        self.on_subscribed = on_subscribed
        self.on_retained = on_retained
        self.on_done = on_done
        self.deadline = time.monotonic() + OP_TIMEOUT_S
        self.subacks = 0
        self.finished = False
        self.client = new_client("monoz-device")
        self.client.on_connect = self._connected
        self.client.on_subscribe = self._subscribed
        self.client.on_message = self._message
        self.client.on_disconnect = self._disconnected
        try:
            self.client.connect(child.host, child.port, keepalive=60)
        except OSError as exc:
            self.finish([f"cannot connect to the broker: {exc}"])

    def _connected(self, _c: Any, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            self.finish([f"connect refused: {reason_code}"])
        else:
            # One SUBSCRIBE for every filter: one SUBACK says they are all in place.
            self.client.subscribe([(topic_filter, 1) for topic_filter in self.filters])

    def _subscribed(self, _c: Any, _u: Any, _mid: Any, reason_codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in reason_codes):
            self.finish([f"subscription refused: {reason_codes}"])
            return
        # One SUBSCRIBE at a time: the first SUBACK is the filters', the second the sentinel's.
        self.subacks += 1
        if self.subacks == 1:
            if self.on_subscribed is not None:
                self.on_subscribed()
            self.client.subscribe(self.sentinel, qos=1)
        else:
            self.client.publish(self.sentinel, b"end", qos=1)

    def _message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == self.sentinel:
            self.finish([])
        elif msg.retain:
            # Live traffic on this connection is the fleet connection's business.
            self.on_retained(msg)

    def _disconnected(self, *_args: Any) -> None:
        self.finish(["connection closed by the broker"])

    @property
    def gone(self) -> bool:
        # Closed once its DISCONNECT is written; a broker that never reads it is left to the GC.
        return self.finished and (self.client.socket() is None or time.monotonic() > self.deadline)

    def expire(self, now: float) -> None:
        if not self.finished and now > self.deadline:
            self.finish([f"no answer from the broker within {OP_TIMEOUT_S} s"])

    def finish(self, errors: list[str]) -> None:
        if self.finished:
            return
        self.finished = True
        self.deadline = time.monotonic() + 5.0
        self.client.on_disconnect = None
        self.client.disconnect()
        self.on_done(errors)


class Child:
    """The device process: its connections, the offline devices, the commands and the output lines."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.out: list[str] = []
        self.offline: set[str] = set()
        self.subscribers: list[Subscriber] = []
        self.fleet = new_client("monoz-devices")
        self.collector = new_client("monoz-uplinks")
        self.fleet.on_message = self._fleet_message
        self.collector.on_message = self._uplink

    # -- messages ----------------------------------------------------------
    def emit(self, doc: Any) -> None:
        self.out.append(json.dumps(doc))

    def _fleet_message(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if not msg.payload:
            # A zero-byte retained message is how the emulator clears the
            # broker's retained store; the API never sends an empty downlink.
            return
        if self.offline and device_of(msg.topic) in self.offline:
            return  # the SIM is disabled or reconnecting: the device is not there
        self.out.append(json.dumps([msg.topic, msg.payload.decode("utf-8", errors="replace"), msg.qos,
                                    bool(msg.retain)]))

    def _uplink(self, _c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if device_of(msg.topic) is not None:
            return  # a downlink on the bare /ORG/ICCID/sub matches /+/+/+ too
        self.emit({"up": [msg.topic, msg.payload.decode("utf-8", errors="replace"), msg.qos]})

    # -- commands ------------------------------------------------------------
    def command(self, doc: dict[str, Any]) -> None:
        op_id, op = doc.get("id"), doc.get("op")
        if op == "offline":
            self.offline.update(doc["devices"])
            self.emit({"ack": op_id})
        elif op == "online":
            # Back online without a new subscription (the emulator's reset: nothing is retained then).
            self.offline.difference_update(doc["devices"])
            self.emit({"ack": op_id})
        elif op == "reconnect":
            # [[device, online_on_failure], ...]; "device" alone is one device, online on failure.
            devices = doc.get("devices") or [[doc["device"], doc.get("online_on_failure", True)]]
            self._reconnect(op_id, {device: bool(online) for device, online in devices})
        elif op == "probe":
            self._probe(op_id, doc["filter"])
        elif op == "publish":
            errors = []
            for topic, payload, qos in doc["messages"]:
                info = self.fleet.publish(topic, payload.encode("utf-8"), qos=qos)
                if info.rc != mqtt.MQTT_ERR_SUCCESS:
                    errors.append(f"{topic}: {mqtt.error_string(info.rc)}")
            if op_id is not None:
                self.emit({"ack": op_id, "errors": errors})
        else:
            self.emit({"ack": op_id, "errors": [f"unknown command {op!r}"]})

    def _reconnect(self, op_id: int, devices: dict[str, bool]) -> None:
        """The devices drop their connection, connect again and subscribe: retained messages arrive anew.

        `devices` maps "ORG/ICCID" to what a failure leaves: back in the state
        the emulator keeps for it, online after a failed reset (True), still
        offline after a failed enable (False).
        """
        self.offline.update(devices)

        def received(msg: mqtt.MQTTMessage) -> None:
            if msg.payload:
                self.out.append(json.dumps([msg.topic, msg.payload.decode("utf-8", errors="replace"), msg.qos, True]))

        def done(errors: list[str]) -> None:
            for device, online_on_failure in devices.items():
                if not errors or online_on_failure:
                    self.offline.discard(device)
                else:
                    self.offline.add(device)
            self.emit({"ack": op_id, "errors": errors})

        # Online from their SUBACK on: from then on the broker delivers their live traffic.
        self._start(Subscriber(self, [f"/{device}/sub/#" for device in devices],
                               lambda: self.offline.difference_update(devices), received, done))

    def _probe(self, op_id: int, topic_filter: str) -> None:
        got: list[dict[str, Any]] = []

        def received(msg: mqtt.MQTTMessage) -> None:
            if msg.payload:
                got.append({"topic": msg.topic, "payload": msg.payload.decode("utf-8", errors="replace"),
                            "qos": msg.qos, "retain": True})

        def done(errors: list[str]) -> None:
            self.emit({"ack": op_id, "received": got, "errors": errors})

        self._start(Subscriber(self, [topic_filter], None, received, done))

    def _start(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    # -- the loop ------------------------------------------------------------
    def connect(self) -> None:
        state: dict[str, Any] = {}

        def on_connect(client: mqtt.Client, *args: Any) -> None:
            state[client] = args[2]

        def on_subscribe(client: mqtt.Client, *args: Any) -> None:
            state[client] = args[2]

        for client, filters in ((self.fleet, [(FLEET_FILTER, 1)]), (self.collector, [(f, 1) for f in UPLINK_FILTERS])):
            client.on_connect, client.on_subscribe = on_connect, on_subscribe
            client.connect(self.host, self.port, keepalive=60)
            for what in ("CONNACK", "SUBACK"):
                state.pop(client, None)
                if what == "SUBACK":
                    client.subscribe(filters)
                while client not in state:
                    if client.loop(timeout=1.0) != mqtt.MQTT_ERR_SUCCESS:
                        raise SystemExit(f"device subscriber: connection lost before {what}")
                codes = state[client] if isinstance(state[client], list) else [state[client]]
                if any(code.is_failure for code in codes):
                    raise SystemExit(f"device subscriber: {what} refused: {codes}")
            client.on_connect = client.on_subscribe = None

    def run(self) -> int:
        self.connect()
        out = sys.stdout.buffer
        out.write(b'{"ready": true}\n')
        out.flush()
        os.set_blocking(0, False)
        pending = b""
        while True:
            # A finished connection stays in the loop until its DISCONNECT is written and the socket closed.
            self.subscribers = [s for s in self.subscribers if not s.gone]
            clients = [self.fleet, self.collector, *(s.client for s in self.subscribers)]
            by_sock = {c.socket(): c for c in clients if c.socket() is not None}
            for main in (self.fleet, self.collector):
                if main.socket() is None:
                    print("device subscriber: connection to the broker lost", file=sys.stderr)
                    return 3
            writable = [sock for sock, c in by_sock.items() if c.want_write()]
            readable, can_write, _ = select.select([0, *by_sock], writable, [], 1.0)
            for sock in can_write:
                by_sock[sock].loop_write()
            for sock in readable:
                if sock == 0:
                    chunk = os.read(0, 1 << 20)
                    if not chunk:
                        return 0  # the emulator is gone
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        if line.strip():
                            self.command(json.loads(line))
                    continue
                client = by_sock[sock]
                # Drain a burst before writing, so one pipe write carries many messages.
                for _ in range(500):
                    before = len(self.out)
                    if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or client.socket() is None:
                        break
                    if len(self.out) == before:
                        break
            now = time.monotonic()
            for client in clients:
                if client.socket() is not None:
                    client.loop_misc()
                if client.want_write() and client.socket() is not None:
                    client.loop_write()
            for subscriber in self.subscribers:
                subscriber.expire(now)
            if self.out:
                out.write(("\n".join(self.out) + "\n").encode())
                out.flush()
                self.out.clear()


def main(argv: list[str]) -> int:
    return Child(argv[0], int(argv[1])).run()


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
