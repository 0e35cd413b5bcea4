#!/usr/bin/env python3
"""Event-Driven Ansible benchmark: the uplink-to-downlink loop and the webhook source's intake.

1. Loop latency. The real engine (ansible-rulebook) runs the shipped
   config_drift rulebook with the monoz.link.webhook source; the emulator
   pushes each device's uplink to it (one-second batches, as Monoz Link
   does); the rule runs the playbook, which sends the desired configuration
   through the emulator's API; the device receives it over MQTT. Measured per
   device: from the moment the uplink is requested (the simulated device then
   publishes over MQTT) to the moment a subscriber on the same broker sees
   the downlink. Modes: "sequential" (one device at a time: the loop's own
   latency) and "burst" (every device at once: latency under load, and the
   time until the whole fleet is fixed).
2. Webhook intake. The webhook source alone in a child process, with an
   engine-like queue (one event) drained as fast as possible; aiohttp clients
   post Monoz-style arrays of 10 packets, and single packets; accepted
   packets per second.

Standalone: needs the main venv (ansible-core, requirements/eda.txt,
requirements/emulator.txt) and Java 17+. Every process it starts is stopped
by its PID (ansible-rulebook by its process group).

    .venv/bin/python bench/eda_bench.py                   # 100 devices, both modes, intake
    .venv/bin/python bench/eda_bench.py --devices 20 --modes sequential --intake-seconds 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RULEBOOKS = REPO / "extensions" / "eda" / "rulebooks"
WEBHOOK_SOURCE = REPO / "extensions" / "eda" / "plugins" / "event_source" / "webhook.py"
sys.path.insert(0, str(REPO / "emulator"))

from monoz_emulator.testing import EmulatorProcess, generated_iccid  # noqa: E402

ORG, API_KEY, TOKEN = "DEMO", "bench-api-key", "bench-webhook-token"
DESIRED = {"config_version": 7, "apn": "iot.1nce.net"}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> str:
    return (f"n={len(values)} median={statistics.median(values):.2f} s p95={percentile(values, 0.95):.2f} s "
            f"min={min(values):.2f} s max={max(values):.2f} s")


# -- 1. the loop -----------------------------------------------------------------------------------


class DownlinkWatch:
    """An MQTT subscriber to every device's downlink topic: when each device got its first message."""

    def __init__(self, host: str, port: int) -> None:
        import paho.mqtt.client as mqtt

        self.arrivals: dict[str, float] = {}
        self.cond = threading.Condition()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"eda-bench-{os.getpid()}")
        subscribed = threading.Event()
        self.client.on_connect = lambda c, *_: c.subscribe(f"/{ORG}/+/sub/#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._message
        self.client.connect(host, port)
        self.client.loop_start()
        if not subscribed.wait(30):
            raise RuntimeError("could not subscribe to the emulator's broker")

    def _message(self, _client: Any, _userdata: Any, message: Any) -> None:
        iccid = message.topic.split("/")[2]
        with self.cond:
            self.arrivals.setdefault(iccid, time.monotonic())
            self.cond.notify_all()

    def wait(self, iccids: list[str], timeout: float) -> dict[str, float]:
        with self.cond:
            self.cond.wait_for(lambda: all(i in self.arrivals for i in iccids), timeout)
            return {i: self.arrivals[i] for i in iccids if i in self.arrivals}

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class RulebookProcess:
    def __init__(self, workdir: Path, emulator: EmulatorProcess) -> None:
        collections = workdir / "collections"
        (collections / "ansible_collections" / "monoz").mkdir(parents=True)
        (collections / "ansible_collections" / "monoz" / "link").symlink_to(REPO, target_is_directory=True)
        inventory = workdir / "inventory.yml"
        inventory.write_text(json.dumps({"all": {"hosts": {"localhost": {
            "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}))
        variables = workdir / "vars.yml"
        variables.write_text(json.dumps({"monoz_webhook_host": "127.0.0.1", "monoz_webhook_port": 0,
                                         "monoz_webhook_token": TOKEN, "monoz_desired_config": DESIRED,
                                         "monoz_playbook_dir": str(RULEBOOKS / "playbooks")}))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MONOZ_"))}
        env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
                   ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_HOME=str(workdir / "ansible-home"),
                   ANSIBLE_LOCAL_TEMP=str(workdir / "tmp"), ANSIBLE_NOCOLOR="1",
                   MONOZ_ORG_ID=ORG, MONOZ_API_KEY=API_KEY, MONOZ_API_URL=emulator.api_url)
        self.log = workdir / "rulebook.log"
        command = [str(Path(sys.executable).parent / "ansible-rulebook"), "-r", str(RULEBOOKS / "config_drift.yml"),
                   "-i", str(inventory), "--vars", str(variables), "-v"]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, cwd=workdir, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def port(self, timeout: float = 120) -> int:
        import re

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(r"monoz.link.webhook: listening on http://127.0.0.1:(\d+)", self.log.read_text(errors="replace"))
            if match:
                return int(match.group(1))
            if self.proc.poll() is not None:
                raise RuntimeError(f"ansible-rulebook exited:\n{self.log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError("the webhook source did not start")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def run_loop(devices: int, modes: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="eda-bench-") as tmp, \
            EmulatorProcess(devices=devices * len(modes) + 1, org=ORG, api_key=API_KEY) as emulator:
        engine = RulebookProcess(Path(tmp), emulator)
        watch = None
        try:
            emulator.set_webhook(f"http://127.0.0.1:{engine.port()}/", headers={"Authorization": f"Bearer {TOKEN}"})
            watch = DownlinkWatch(emulator.mqtt_host, emulator.mqtt_port)
            drift = json.dumps({"config_version": 3})
            # one warm-up loop (first playbook run loads more than later ones)
            warm = generated_iccid(devices * len(modes))
            emulator.uplink(warm, drift, topic="status")
            watch.wait([warm], 120)
            for offset, mode in enumerate(modes):
                iccids = [generated_iccid(offset * devices + i) for i in range(devices)]
                sent: dict[str, float] = {}
                started = time.monotonic()
                if mode == "sequential":
                    for iccid in iccids:
                        sent[iccid] = time.monotonic()
                        emulator.uplink(iccid, drift, topic="status")
                        watch.wait([iccid], 120)
                else:
                    now = time.monotonic()
                    for iccid in iccids:
                        sent[iccid] = now
                    emulator.uplinks(drift, iccids=iccids, topic="status")
                arrivals = watch.wait(iccids, 900)
                latencies = [arrivals[i] - sent[i] for i in iccids if i in arrivals]
                results[mode] = {"devices": len(iccids), "received": len(latencies),
                                 "median_s": statistics.median(latencies), "p95_s": percentile(latencies, 0.95),
                                 "min_s": min(latencies), "max_s": max(latencies),
                                 "all_done_s": max(arrivals.values()) - started}
                print(f"loop latency, {mode:10s}: {summary(latencies)}; all {len(latencies)}/{len(iccids)} devices fixed "
                      f"{results[mode]['all_done_s']:.1f} s after the first uplink", flush=True)
            results["webhook"] = emulator.webhook()
        finally:
            if watch is not None:
                watch.close()
            engine.stop()
    return results


# -- 2. webhook intake ---------------------------------------------------------------------------

CHILD = r"""
import asyncio, json, logging, runpy, sys
source = runpy.run_path(sys.argv[1])
logging.basicConfig(level=logging.INFO, stream=sys.stderr)

async def run():
    queue = asyncio.Queue(1)  # as ansible-rulebook's
    count = 0
    async def consume():
        nonlocal count
        while True:
            await queue.get()
            count += 1
    async def report():
        while True:
            line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            print(count, flush=True)
    consumer = asyncio.ensure_future(consume())
    server = asyncio.ensure_future(source["main"](queue, json.loads(sys.argv[2])))
    await report()
    server.cancel(); consumer.cancel()

asyncio.run(run())
"""


def run_intake(seconds: float, concurrency: int) -> dict[str, Any]:
    import aiohttp

    args = {"host": "127.0.0.1", "port": 0, "token": TOKEN}
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(WEBHOOK_SOURCE), json.dumps(args)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results: dict[str, Any] = {}
    try:
        port = None
        assert proc.stderr is not None
        for line in proc.stderr:
            if "listening on" in line:
                port = int(line.rsplit(":", 1)[1].split()[0])
                break
        if port is None:
            raise RuntimeError("the webhook source did not start")
        threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep draining its log

        def consumed() -> int:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write("\n")
            proc.stdin.flush()
            return int(proc.stdout.readline())

        def packet(i: int) -> dict[str, Any]:
            return {"ICCID": f"{8988280666000000000 + i % 1000}", "Timestamp": "2026-11-30T10:00:00.1234567Z",
                    "Payload": json.dumps({"config_version": 3, "seq": i})}

        async def drive(batch: int) -> tuple[int, float]:
            body = json.dumps([packet(i) for i in range(batch)] if batch > 1 else packet(0)).encode()
            headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
            accepted = 0
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
                stop = time.monotonic() + seconds

                async def worker() -> None:
                    nonlocal accepted
                    while time.monotonic() < stop:
                        async with session.post(f"http://127.0.0.1:{port}/", data=body, headers=headers) as response:
                            await response.read()
                            if response.status == 200:
                                accepted += batch

                started = time.monotonic()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                return accepted, time.monotonic() - started

        for batch in (10, 1):
            before = consumed()
            accepted, elapsed = asyncio.run(drive(batch))
            after = consumed()
            results[f"batch_{batch}"] = {"accepted": accepted, "seconds": elapsed, "packets_per_s": accepted / elapsed,
                                         "events_consumed": after - before}
            print(f"webhook intake, {'arrays of 10' if batch == 10 else 'single packets'}: "
                  f"{accepted / elapsed:,.0f} accepted packets/s ({accepted} in {elapsed:.1f} s, "
                  f"{concurrency} connections; events in the queue: {after - before})", flush=True)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--modes", nargs="+", choices=["sequential", "burst"], default=["sequential", "burst"])
    parser.add_argument("--intake-seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    options = parser.parse_args()
    figures: dict[str, Any] = {}
    if not options.skip_loop:
        figures["loop"] = run_loop(options.devices, options.modes)
    figures["intake"] = run_intake(options.intake_seconds, options.concurrency)
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
