"""Throughput check of the emulator: N Publish requests from W threads (or P processes).

    PYTHONPATH=emulator python emulator/tools/loadtest.py --messages 5000 --workers 32 [--processes 2] [--qos 1]

Starts its own emulator (EmulatorProcess), pushes one message per device,
then waits until the simulated devices received every one of them.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter

from monoz_emulator.testing import EmulatorProcess, generated_iccid


def _push(url: str, key: str, indices: list[int], workers: int, qos: int) -> dict[str, int]:
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=workers))
    headers = {"X-API-Key": key, "Content-Type": "application/json"}
    counts: dict[str, int] = {}
    lock = threading.Lock()

    def one(i: int) -> None:
        body = {"ICCID": generated_iccid(i), "Topic": "/config", "Message": json.dumps({"seq": i, "apn": "iot.example"}),
                "QoS": qos, "Format": 0}
        status = session.post(url, json=body, headers=headers, timeout=30).status_code
        with lock:
            counts[str(status)] = counts.get(str(status), 0) + 1

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(one, indices))
    return counts


def _push_aiohttp(url: str, key: str, indices: list[int], workers: int, qos: int) -> dict[str, int]:
    """Same load from an asyncio client: much cheaper per request than requests+threads."""
    import asyncio

    import aiohttp

    async def run() -> dict[str, int]:
        counts: dict[str, int] = {}
        todo = iter(indices)
        headers = {"X-API-Key": key}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=workers)) as session:
            async def worker() -> None:
                for i in todo:
                    body = {"ICCID": generated_iccid(i), "Topic": "/config",
                            "Message": json.dumps({"seq": i, "apn": "iot.example"}), "QoS": qos, "Format": 0}
                    async with session.post(url, json=body, headers=headers) as resp:
                        await resp.read()
                        counts[str(resp.status)] = counts.get(str(resp.status), 0) + 1
            await asyncio.gather(*(worker() for _ in range(workers)))
        return counts

    return asyncio.run(run())


def _proc_main(args: tuple[str, str, list[int], int, int, bool], out: "multiprocessing.Queue[dict[str, int]]") -> None:
    out.put((_push_aiohttp if args[-1] else _push)(*args[:-1]))


def _cpu_seconds(pid: int, children: bool = False) -> float:
    """utime+stime of a process (Linux), optionally plus its live children (the device subscriber)."""
    import os
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    if children:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            total += sum(_cpu_seconds(int(child)) for child in fh.read().split())
    return total


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--messages", type=int, default=5000)
    p.add_argument("--workers", type=int, default=32, help="threads per process")
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--qos", type=int, default=1)
    p.add_argument("--client", choices=("requests", "aiohttp"), default="requests")
    p.add_argument("--no-mqtt", action="store_true", help="HTTP side only (measures the API cost alone)")
    p.add_argument("--python", default=sys.executable, help="interpreter for the emulator")
    p.add_argument("--broker", choices=("embedded", "mosquitto"), default="embedded",
                   help="MQTT broker: the embedded amqtt or a private mosquitto (its CPU counted apart)")
    args = p.parse_args()
    with EmulatorProcess(devices=args.messages, python=args.python, mqtt_broker=args.broker,
                         extra_args=["--no-mqtt"] if args.no_mqtt else []) as emu:
        url = emu.publish_url
        indices = list(range(args.messages))
        broker_pid = emu.mosquitto.pid if emu.mosquitto is not None else None
        broker0 = _cpu_seconds(broker_pid) if broker_pid else 0.0
        cpu0 = _cpu_seconds(emu.pid)
        all0 = _cpu_seconds(emu.pid, children=not args.no_mqtt)
        start = time.perf_counter()
        if args.processes == 1:
            push = _push_aiohttp if args.client == "aiohttp" else _push
            counts = push(url, emu.api_key, indices, args.workers, args.qos)
        else:
            queue: multiprocessing.Queue[dict[str, int]] = multiprocessing.Queue()
            procs = [multiprocessing.Process(target=_proc_main,
                                             args=((url, emu.api_key, indices[k::args.processes], args.workers, args.qos,
                                                    args.client == "aiohttp"), queue))
                     for k in range(args.processes)]
            for proc in procs:
                proc.start()
            counts = {}
            for _ in procs:
                for key, value in queue.get().items():
                    counts[key] = counts.get(key, 0) + value
            for proc in procs:
                proc.join()
        http_done = time.perf_counter() - start
        got = emu.received_counts(wait_total=0 if args.no_mqtt else args.messages, timeout=120)
        all_done = time.perf_counter() - start
        cpu = _cpu_seconds(emu.pid) - cpu0
        cpu_all = _cpu_seconds(emu.pid, children=not args.no_mqtt) - all0
        broker_cpu = (_cpu_seconds(broker_pid) - broker0) if broker_pid else None
        stats = emu.stats()
    print(json.dumps({
        "messages": args.messages, "workers": args.workers, "processes": args.processes, "client": args.client, "qos": args.qos,
        "http_seconds": round(http_done, 3), "http_rps": round(args.messages / http_done),
        "delivered_seconds": round(all_done, 3), "end_to_end_rps": round(args.messages / all_done),
        "emulator_cpu_s": round(cpu, 2), "emulator_cpu_us_per_msg": round(cpu / args.messages * 1e6),
        "emulator_capacity_rps_per_core": round(args.messages / cpu) if cpu else None,
        "device_subscriber_cpu_s": round(cpu_all - cpu, 2),
        "mosquitto_cpu_us_per_msg": round(broker_cpu / args.messages * 1e6) if broker_cpu is not None else None,
        "broker": args.broker, "status": counts, "received_total": got["total"], "devices_with_messages": len(got["by_device"]),
        "stats": stats,
    }))
    ok = counts == {"200": args.messages} and (args.no_mqtt or got["total"] == args.messages)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
