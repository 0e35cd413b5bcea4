"""Simulated devices: real MQTT subscribers on the broker, and what they received.

One paho-mqtt client (in a child process, see device_proc.py) stands for the whole fleet: it subscribes with QoS 1 to
`/+/+/sub/#` (which also matches the bare `/ORG/ICCID/sub`) and files every
message under the (org, iccid) taken from its topic. One client instead of one
per device keeps 10k-device fleets cheap while the messages still travel over
TCP through the broker exactly as they would to a device.

The child streams JSON lines; the loop files them per burst and then resolves
waiters (futures with a predicate), so `wait_for` blocks without polling.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

DEVICE_FILTER = "/+/+/sub/#"
LOG = logging.getLogger(__name__)


def _record(msg: mqtt.MQTTMessage) -> dict[str, Any]:
    return {
        "topic": msg.topic,
        "payload": msg.payload.decode("utf-8", errors="replace"),
        "qos": msg.qos,
        "retain": bool(msg.retain),
    }


def split_device_topic(topic: str) -> tuple[str, str] | None:
    """`/ORG/ICCID/sub[/...]` -> (ORG, ICCID); None for any other topic."""
    parts = topic.split("/", 4)
    if len(parts) < 4 or parts[0] != "" or parts[3] != "sub":
        return None
    return parts[1], parts[2]


class ReceivedStore:
    """Record of device receipts with asyncio waiters (used from the loop thread only)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._by_device: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self._total = 0
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def add(self, org: str, iccid: str, record: dict[str, Any]) -> None:
        self._by_device.setdefault((org, iccid), []).append(record)
        self._total += 1

    def notify(self) -> None:
        """Re-check waiters; called once per batch of added records."""
        if not self._waiters:
            return
        still_waiting = []
        for predicate, fut in self._waiters:
            if fut.done():
                continue
            if predicate():
                fut.set_result(None)
            else:
                still_waiting.append((predicate, fut))
        self._waiters = still_waiting

    async def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until predicate() is true or timeout; returns the predicate."""
        if predicate():
            return True
        fut: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((predicate, fut))
        try:
            await asyncio.wait_for(fut, timeout=max(timeout, 0))
        except asyncio.TimeoutError:
            pass
        return predicate()

    def count(self, org: str, iccid: str) -> int:
        return len(self._by_device.get((org, iccid), ()))

    def total(self) -> int:
        return self._total

    def device(self, org: str, iccid: str) -> list[dict[str, Any]]:
        return list(self._by_device.get((org, iccid), ()))

    def counts(self) -> dict[str, int]:
        return {f"{org}/{iccid}": len(msgs) for (org, iccid), msgs in self._by_device.items()}

    def all(self) -> dict[str, list[dict[str, Any]]]:
        return {f"{org}/{iccid}": list(msgs) for (org, iccid), msgs in self._by_device.items()}

    def clear(self) -> None:
        self._by_device.clear()
        self._total = 0


def _new_client(client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    # 0 = unlimited: never drop on our side during bursts.
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(0)
    return client


class DeviceFleet:
    """The fleet subscriber: a child process (device_proc) streaming what it receives."""

    def __init__(self, host: str, port: int, store: ReceivedStore) -> None:
        self.host = host
        self.port = port
        self.store = store
        self.ignored = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None

    async def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ)
        package_parent = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monoz_emulator.device_proc", self.host, str(self.port), DEVICE_FILTER,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None, env=env,
            limit=4 * 1024 * 1024,
        )
        assert self._proc.stdout is not None
        try:
            line = await asyncio.wait_for(self._proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            await self.stop()
            raise RuntimeError("device subscriber did not become ready") from None
        if not line.startswith(b'{"ready"'):
            await self.stop()
            raise RuntimeError(f"device subscriber failed to start (exit {self._proc.returncode})")
        self._reader_task = asyncio.create_task(self._read(self._proc.stdout))

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        store = self.store
        loads = json.loads
        carry = b""
        while True:
            # read(n) returns whatever is buffered: one wake-up files a whole burst.
            chunk = await stdout.read(1 << 20)
            if not chunk:
                break
            data = carry + chunk
            cut = data.rfind(b"\n")
            if cut < 0:
                carry = data
                continue
            carry = data[cut + 1:]
            for line in data[:cut].split(b"\n"):
                topic, payload, qos, retain = loads(line)
                ids = split_device_topic(topic)
                if ids is None:
                    self.ignored += 1
                    continue
                store.add(ids[0], ids[1], {"topic": topic, "payload": payload, "qos": qos, "retain": retain})
            store.notify()
        if self._proc is not None and self._proc.returncode not in (None, 0, -15):
            LOG.error("device subscriber exited with %s", self._proc.returncode)

    async def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            try:
                proc.terminate()  # by our child's PID
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                proc.kill()
                await proc.wait()
        if self._reader_task is not None:
            self._reader_task.cancel()
            await asyncio.gather(self._reader_task, return_exceptions=True)
        self._proc = None


def late_subscribe(host: str, port: int, org: str, iccid: str, timeout: float = 5.0) -> dict[str, Any]:
    """Connect a brand-new device client and collect what the broker retained for it.

    Blocking (run it in an executor). End of the retained burst is detected
    deterministically: after the device SUBACK we subscribe a private sentinel
    topic, then publish one QoS 1 message to it. The broker sends a
    subscription's retained messages before acting on the next packet from
    the same connection, so once the sentinel comes back every retained
    message is already in. `timeout` only bounds a broken broker.
    """
    sentinel = f"/_emulator/sentinel/{uuid.uuid4().hex}"
    got: list[dict[str, Any]] = []
    lock = threading.Lock()
    connected = threading.Event()
    device_subscribed = threading.Event()
    sentinel_subscribed = threading.Event()
    done = threading.Event()
    errors: list[str] = []
    subacks: list[int] = []

    client = _new_client(f"monoz-late-{uuid.uuid4().hex[:12]}")

    def on_connect(_c: Any, _u: Any, _f: Any, reason_code: Any, _p: Any) -> None:
        if reason_code.is_failure:
            errors.append(f"connect refused: {reason_code}")
            done.set()
        connected.set()

    def on_subscribe(_c: Any, _u: Any, mid: int, reason_codes: Any, _p: Any) -> None:
        if any(code.is_failure for code in reason_codes):
            errors.append(f"subscribe refused: {reason_codes}")
            done.set()
        # Subscriptions are sent one at a time (the second only after the
        # first SUBACK), so the n-th SUBACK belongs to the n-th SUBSCRIBE.
        subacks.append(mid)
        (device_subscribed if len(subacks) == 1 else sentinel_subscribed).set()

    def on_message(_c: Any, _u: Any, msg: mqtt.MQTTMessage) -> None:
        if msg.topic == sentinel:
            done.set()
            return
        with lock:
            got.append(_record(msg))

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    deadline = time.monotonic() + timeout
    client.connect(host, port, 30)
    client.loop_start()
    try:
        if not connected.wait(max(deadline - time.monotonic(), 0)):
            errors.append("timed out waiting for CONNACK")
        client.subscribe(f"/{org}/{iccid}/sub/#", qos=1)
        if not device_subscribed.wait(max(deadline - time.monotonic(), 0)):
            errors.append("timed out waiting for SUBACK")
        else:
            client.subscribe(sentinel, qos=1)
            if sentinel_subscribed.wait(max(deadline - time.monotonic(), 0)):
                client.publish(sentinel, b"end", qos=1)
                if not done.wait(max(deadline - time.monotonic(), 0)):
                    errors.append("timed out waiting for the end-of-retained sentinel")
            else:
                errors.append("timed out waiting for sentinel SUBACK")
    finally:
        client.disconnect()
        client.loop_stop()
    with lock:
        retained = [m for m in got if m["retain"]]
    result: dict[str, Any] = {"received": retained}
    if errors:
        result["errors"] = errors
    return result
