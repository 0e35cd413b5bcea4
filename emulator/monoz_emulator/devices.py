"""The simulated devices as the emulator sees them: the device child process and what devices received.

All device-side MQTT runs in a child process (device_proc.py, paho-mqtt on
the second core). `DeviceFleet` starts it, sends it commands (SIM offline,
reconnect, probe, publish uplinks) and reads its stream: messages devices
received go to the `ReceivedStore`, uplinks to a callback, command answers to
the futures waiting for them. Messages are filed per burst, then waiters
(futures with a predicate) are resolved, so `wait_for` blocks without polling.

Reconnections (SIM reset, SIM enabled) are queued and run in batches: every
device queued while one batch is under way reconnects in the next, over one
short-lived connection that re-subscribes each device's filter. One MQTT
connection per device and reset cost the broker and the device process a
connection set-up each; a fleet reset at API speed then used more CPU than
the API itself. `reconnect` returns at once with a future, and `settled`
lets anything that looks at or talks to a device wait until its queued
reconnection is over, so callers see the same order of events as if each
reset had completed before the API answered.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

LOG = logging.getLogger(__name__)
COMMAND_TIMEOUT_S = 60.0
# Filters one reconnection batch subscribes in one SUBSCRIBE.
RECONNECT_BATCH = 256
# Pause between two batches, while resets keep coming: a connection set-up
# costs far more than a filter, so a burst of resets goes in few, full batches.
RECONNECT_GATHER_S = 0.05
# A device topic no org can have (orgs are letters, digits, '_' and '-'): the sync marker's.
SYNC_ORG = "~emulator"
SYNC_TOPIC = f"/{SYNC_ORG}/sync/sub"


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


class DeviceError(RuntimeError):
    """The device child failed a command or is gone."""


class DeviceFleet:
    """The device child process: start, command, stream what devices receive and publish."""

    def __init__(self, host: str, port: int, store: ReceivedStore,
                 on_uplink: Callable[[str, str, int], None] | None = None) -> None:
        self.host = host
        self.port = port
        self.store = store
        self.on_uplink = on_uplink
        self.ignored = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._syncs_sent = 0
        self._syncs_seen = 0
        # device ("ORG/ICCID") -> the future of its latest queued reconnection.
        self.reconnecting: dict[str, asyncio.Future[None]] = {}
        self._queued: list[tuple[str, bool, asyncio.Future[None]]] = []
        self._reconnect_task: asyncio.Task[None] | None = None
        self.reconnect_batches = 0

    async def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ)
        package_parent = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH", "")) if p)
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "monoz_emulator.device_proc", self.host, str(self.port),
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

    # -- commands -----------------------------------------------------------
    async def command(self, op: str, timeout: float = COMMAND_TIMEOUT_S, **args: Any) -> dict[str, Any]:
        """Send a command to the child and wait for its answer; DeviceError when it reports errors."""
        proc = self._proc
        if proc is None or proc.stdin is None or proc.returncode is not None:
            raise DeviceError("the device process is not running")
        op_id = next(self._ids)
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[op_id] = fut
        try:
            proc.stdin.write(json.dumps({"id": op_id, "op": op, **args}).encode() + b"\n")
            await proc.stdin.drain()
            answer = await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            raise DeviceError(f"the device process did not answer {op!r} within {timeout} s") from None
        finally:
            self._waiting.pop(op_id, None)
        if answer.get("errors"):
            raise DeviceError("; ".join(answer["errors"]))
        return answer

    def send(self, op: str, **args: Any) -> None:
        """Fire and forget (periodic uplinks)."""
        proc = self._proc
        if proc is not None and proc.stdin is not None and proc.returncode is None:
            proc.stdin.write(json.dumps({"op": op, **args}).encode() + b"\n")

    # -- reconnections ------------------------------------------------------
    def reconnect(self, device: str, online_on_failure: bool = True) -> asyncio.Future[None]:
        """Queue a reconnection of `device` ("ORG/ICCID"); the future is done once it is subscribed again.

        The device drops its connection, connects and subscribes anew, so the
        broker sends it its retained messages again. The future's exception
        is a DeviceError when that failed; the device is then back online
        (`online_on_failure`) or stays offline.
        """
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((device, online_on_failure, fut))
        self.reconnecting[device] = fut
        fut.add_done_callback(lambda done: self._forget(device, done))
        if self._reconnect_task is None or self._reconnect_task.done():
            self._reconnect_task = asyncio.create_task(self._run_reconnects())
        return fut

    def _forget(self, device: str, fut: asyncio.Future[None]) -> None:
        if self.reconnecting.get(device) is fut:
            del self.reconnecting[device]

    async def settled(self, device: str | None = None, timeout: float = COMMAND_TIMEOUT_S) -> None:
        """Return once the reconnections queued so far for `device` (for every device with None) are over."""
        if device is None:
            pending = list(self.reconnecting.values())
        else:
            fut = self.reconnecting.get(device)
            pending = [fut] if fut is not None else []
        if pending:
            # A device's reconnections run in queue order: its latest is its last.
            await asyncio.wait(pending, timeout=timeout)

    async def _run_reconnects(self) -> None:
        # The first batch goes at once: a lone reset is over in a few milliseconds.
        first = True
        while self._queued:
            if not first and len(self._queued) < RECONNECT_BATCH:
                await asyncio.sleep(RECONNECT_GATHER_S)
            first = False
            # A device queued twice reconnects twice: the second time in a later batch.
            batch: list[tuple[str, bool, asyncio.Future[None]]] = []
            later: list[tuple[str, bool, asyncio.Future[None]]] = []
            seen: set[str] = set()
            for item in self._queued:
                if item[0] in seen or len(batch) >= RECONNECT_BATCH:
                    later.append(item)
                else:
                    seen.add(item[0])
                    batch.append(item)
            self._queued = later
            self.reconnect_batches += 1
            try:
                await self.command("reconnect", devices=[[device, online] for device, online, _fut in batch])
                error: BaseException | None = None
            except DeviceError as exc:
                error = exc
            for _device, _online, fut in batch:
                if fut.done():
                    continue
                if error is None:
                    fut.set_result(None)
                else:
                    fut.set_exception(DeviceError(str(error)))

    async def probe(self, topic_filter: str) -> list[dict[str, Any]]:
        """Retained messages a brand-new subscriber to `topic_filter` gets."""
        return (await self.command("probe", filter=topic_filter))["received"]

    async def sync(self, publisher: Any, timeout: float = 30.0) -> bool:
        """Return once every message `publisher` sent before now has reached the devices.

        The fleet connection receives every device topic and the broker
        forwards one publisher's messages in order, so when a marker published
        now arrives, everything published earlier has arrived too.
        """
        self._syncs_sent += 1
        wanted = self._syncs_sent
        await publisher.deliver(SYNC_TOPIC, str(wanted).encode(), 1, False)
        return await self.store.wait(lambda: self._syncs_seen >= wanted, timeout)

    # -- the child's stream ---------------------------------------------------
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
                if line[:1] == b"[":
                    topic, payload, qos, retain = loads(line)
                    ids = split_device_topic(topic)
                    if ids is None:
                        self.ignored += 1
                        continue
                    if ids[0] == SYNC_ORG:
                        self._syncs_seen += 1
                        continue
                    store.add(ids[0], ids[1], {"topic": topic, "payload": payload, "qos": qos, "retain": retain})
                else:
                    self._event(loads(line))
            store.notify()
        for fut in self._waiting.values():
            if not fut.done():
                fut.set_exception(DeviceError("the device process exited"))
        if self._proc is not None and self._proc.returncode not in (None, 0, -15):
            LOG.error("device subscriber exited with %s", self._proc.returncode)

    def _event(self, doc: dict[str, Any]) -> None:
        if "up" in doc:
            if self.on_uplink is not None:
                self.on_uplink(*doc["up"])
            return
        fut = self._waiting.get(doc.get("ack"))  # type: ignore[arg-type]
        if fut is not None and not fut.done():
            fut.set_result(doc)

    async def stop(self) -> None:
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
            await asyncio.gather(self._reconnect_task, return_exceptions=True)
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
