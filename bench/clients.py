#!/usr/bin/env python3
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible-free load clients for bench/run_bench.py, each run as its own process.

    python bench/clients.py raw     --url URL --key KEY --first 0 --count M --concurrency C --message TEXT
    python bench/clients.py aiohttp --url URL --key KEY --first 0 --count M --concurrency K [--processes P] --message TEXT

``raw``: the practical limit of a Python ``requests`` client -- C threads over ONE
``requests.Session`` whose pool holds C keep-alive connections (what the module
does, minus Ansible). ``aiohttp``: an asyncio client (optionally in several
processes) to load the emulator harder than any ``requests`` client can, i.e. its
capacity. Both print one JSON line: send seconds (timed around the sending only),
HTTP status counts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import threading
import time

ICCID_PREFIX = "89882806660"


def iccid(index: int) -> str:
    return f"{ICCID_PREFIX}{index:08d}"


def body(index: int, message: str) -> bytes:
    return json.dumps({"ICCID": iccid(index), "Topic": "", "Message": message, "QoS": 0, "Format": 0},
                      separators=(",", ":")).encode()


def run_raw(args: argparse.Namespace) -> dict:
    import requests
    from requests.adapters import HTTPAdapter

    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=args.concurrency, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update({"X-API-Key": args.key, "Content-Type": "application/json", "Accept": "application/json"})
    todo = iter(range(args.first, args.first + args.count))
    lock = threading.Lock()
    codes: dict[str, int] = {}

    def worker() -> None:
        local: dict[str, int] = {}
        while True:
            with lock:
                index = next(todo, None)
            if index is None:
                break
            response = session.post(args.url, data=body(index, args.message), timeout=30, allow_redirects=False)
            response.json()
            local[str(response.status_code)] = local.get(str(response.status_code), 0) + 1
        with lock:
            for key, value in local.items():
                codes[key] = codes.get(key, 0) + value

    threads = [threading.Thread(target=worker) for _ in range(min(args.concurrency, args.count))]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"send_seconds": time.perf_counter() - start, "codes": codes}


def _aiohttp_slice(url: str, key: str, indices: list, concurrency: int, message: str) -> dict:
    import asyncio

    import aiohttp

    async def main() -> dict:
        codes: dict[str, int] = {}
        todo = iter(indices)
        headers = {"X-API-Key": key, "Content-Type": "application/json"}
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            async def worker() -> None:
                for index in todo:
                    async with session.post(url, data=body(index, message), headers=headers) as response:
                        await response.read()
                        codes[str(response.status)] = codes.get(str(response.status), 0) + 1
            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return codes

    return asyncio.run(main())


def _aiohttp_proc(args: tuple, start_event, out) -> None:
    start_event.wait()
    out.put(_aiohttp_slice(*args))


def run_aiohttp(args: argparse.Namespace) -> dict:
    indices = list(range(args.first, args.first + args.count))
    if args.processes <= 1:
        start = time.perf_counter()
        codes = _aiohttp_slice(args.url, args.key, indices, args.concurrency, args.message)
        return {"send_seconds": time.perf_counter() - start, "codes": codes}
    ctx = multiprocessing.get_context("fork")
    go = ctx.Event()
    out = ctx.Queue()
    procs = [ctx.Process(target=_aiohttp_proc,
                         args=((args.url, args.key, indices[k::args.processes], args.concurrency, args.message), go, out))
             for k in range(args.processes)]
    for proc in procs:
        proc.start()
    time.sleep(0.3)  # let the children import aiohttp before the clock starts
    start = time.perf_counter()
    go.set()
    codes: dict[str, int] = {}
    for _ in procs:
        for key, value in out.get().items():
            codes[key] = codes.get(key, 0) + value
    elapsed = time.perf_counter() - start
    for proc in procs:
        proc.join()
    return {"send_seconds": elapsed, "codes": codes}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("client", choices=("raw", "aiohttp"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--message", required=True)
    args = parser.parse_args()
    result = run_raw(args) if args.client == "raw" else run_aiohttp(args)
    print(json.dumps(result))
    return 0 if result["codes"] == {"200": args.count} else 1


if __name__ == "__main__":
    sys.exit(main())
