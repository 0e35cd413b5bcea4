#!/usr/bin/env python3
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Ansible-free load clients for bench/run_bench.py, each run as its own process.

    python bench/clients.py raw     --url URL --key KEY --first 0 --count M --concurrency C --message TEXT
    python bench/clients.py aiohttp --url URL --key KEY --first 0 --count M --concurrency K [--processes P] --message TEXT
    python bench/clients.py monoz   --url URL --key KEY --first 0 --count M --concurrency C --message TEXT


``raw``: the practical limit of a Python ``requests`` client -- C threads over ONE
``requests.Session`` whose pool holds C keep-alive connections (what the module
does, minus Ansible). ``aiohttp``: an asyncio client (optionally in several
processes) to load the emulator harder than any ``requests`` client can, i.e. its
capacity. ``monoz``: the collection's own batch engine (``run_downlink`` with
``devices``, as the module and action plugin run it) without Ansible, to tell
the client's cost from Ansible's. Each prints one JSON line: send seconds (timed
around the sending only), the process CPU seconds over the same span (all
threads: the client's cost per request, which bounds a GIL-bound client), HTTP
status counts.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

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
    start, cpu = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"send_seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu, "codes": codes}


def run_monoz(args: argparse.Namespace) -> dict:
    # The collection imports as ansible_collections.monoz.link: a symlink to the checkout.
    root = Path(tempfile.mkdtemp(prefix="monoz-bench-client-"))
    (root / "ansible_collections" / "monoz").mkdir(parents=True)
    (root / "ansible_collections" / "monoz" / "link").symlink_to(Path(args.collection_root).resolve())
    sys.path.insert(0, str(root))
    from ansible_collections.monoz.link.plugins.module_utils._downlink_runner import run_downlink

    api_url = args.url.partition("/Publish/Message")[0]
    api_url, _sep, org = api_url.rpartition("/")
    params = {
        "api_url": api_url, "org_id": org, "api_key": args.key, "timeout": 30.0, "validate_certs": True, "retries": 0,
        "iccid": None, "devices": [iccid(index) for index in range(args.first, args.first + args.count)],
        "payload": args.message, "format": "json", "topic": "", "qos": 0, "retain": None, "journal": None,
        "concurrency": args.concurrency, "rate_limit": 0.0,
    }
    start, cpu = time.perf_counter(), time.process_time()
    run = run_downlink(params, check_mode=False)
    result = {"send_seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu}
    codes: dict[str, int] = {}
    for row in run.result.get("results", []):
        code = str(row["status_code"])
        codes[code] = codes.get(code, 0) + 1
    result["codes"] = codes
    os.unlink(root / "ansible_collections" / "monoz" / "link")
    return result


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
    parser.add_argument("client", choices=("raw", "aiohttp", "monoz"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--first", type=int, default=0)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--message", required=True)
    parser.add_argument("--collection-root", default=str(Path(__file__).resolve().parent.parent),
                        help="monoz: the collection checkout to import (default: this repository)")
    args = parser.parse_args()
    result = {"raw": run_raw, "aiohttp": run_aiohttp, "monoz": run_monoz}[args.client](args)
    print(json.dumps(result))
    return 0 if result["codes"] == {"200": args.count} else 1


if __name__ == "__main__":
    sys.exit(main())
