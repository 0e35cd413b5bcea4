"""The simulated-device MQTT subscriber, run as a child process of the emulator.

    python -m monoz_emulator.device_proc HOST PORT FILTER

Why a separate process: paho's network loop in a thread of the emulator
competed with the asyncio loop for the GIL and took ~45% of the emulator's
CPU per message; in its own process it uses the second core and keeps up with
bursts. It writes one JSON line per received message to stdout
(`[topic, payload, qos, retain]`), batched per read burst, after a first
`{"ready": true}` line once its SUBACK arrived. It exits when stdin closes
(the emulator went away), so it never outlives its parent.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt


def _watch_parent() -> None:
    # stdin is a pipe from the emulator: EOF means the emulator is gone.
    try:
        sys.stdin.buffer.read()
    finally:
        os._exit(0)


def main(argv: list[str]) -> int:
    host, port, topic_filter = argv[0], int(argv[1]), argv[2]
    out = sys.stdout.buffer
    batch: list[str] = []
    state: dict[str, Any] = {"connected": None, "subscribed": None}

    def on_connect(_c: Any, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        state["connected"] = reason_code

    def on_subscribe(_c: Any, _u: Any, _mid: Any, reason_codes: Any, _p: Any) -> None:
        state["subscribed"] = reason_codes

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        payload = msg.payload.decode("utf-8", errors="replace")
        batch.append(json.dumps([msg.topic, payload, msg.qos, bool(msg.retain)]))

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"monoz-devices-{uuid.uuid4().hex[:8]}",
                         clean_session=True)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(0)
    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    threading.Thread(target=_watch_parent, daemon=True).start()

    client.connect(host, port, keepalive=60)
    while state["connected"] is None:
        if client.loop(timeout=1.0) != mqtt.MQTT_ERR_SUCCESS:
            print("device subscriber: connection lost before CONNACK", file=sys.stderr)
            return 2
    if state["connected"].is_failure:
        print(f"device subscriber: connect refused: {state['connected']}", file=sys.stderr)
        return 2
    client.subscribe(topic_filter, qos=1)
    while state["subscribed"] is None:
        if client.loop(timeout=1.0) != mqtt.MQTT_ERR_SUCCESS:
            print("device subscriber: connection lost before SUBACK", file=sys.stderr)
            return 2
    if any(code.is_failure for code in state["subscribed"]):
        print(f"device subscriber: subscription refused: {state['subscribed']}", file=sys.stderr)
        return 2
    out.write(b'{"ready": true}\n')
    out.flush()

    while True:
        rc = client.loop(timeout=1.0)
        # Drain a burst before writing, so one pipe write carries many messages.
        for _ in range(500):
            before = len(batch)
            if rc != mqtt.MQTT_ERR_SUCCESS:
                break
            rc = client.loop(timeout=0)
            if len(batch) == before:
                break
        if batch:
            out.write(("\n".join(batch) + "\n").encode())
            out.flush()
            batch.clear()
        if rc != mqtt.MQTT_ERR_SUCCESS:
            print(f"device subscriber: connection lost ({rc})", file=sys.stderr)
            return 3


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except (BrokenPipeError, KeyboardInterrupt):
        sys.exit(0)
