#!/usr/bin/env python3
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Benchmark of monoz_device_info over a fleet against an ansible.builtin.uri loop.

    python bench/bench_modules.py                      # 10,000 devices, 50 ms, C=32, uri loop over 100
    python bench/bench_modules.py --devices 2000 --loop-devices 20
    python bench/bench_modules.py --python /path/to/venv/bin/python

One emulator (emulator/monoz_emulator, stopped by PID) with M devices and the
given API latency; then:

  1. monoz.link.monoz_device_info over all M devices in one task, concurrency C,
     on the default execution path and forced through the module process
     (MONOZ_EXECUTION=module; the same when no action plugin serves the module);
  2. ansible.builtin.uri in a loop over N devices, one GET per device, whose
     steady per-item cost is extrapolated to M;
  3. the limit C / latency.

Every run is verified at the emulator: exactly the expected number of
``GET Device/Sim/Detail`` requests, all answered 200.  Figures are printed
(a table and one JSON line); nothing is asserted on time.  The figure the
issue sets: the module's rate >= 85% of C / latency, as monoz_downlink's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
PLAYBOOKS = BENCH_DIR / "playbooks"
CALLBACKS = BENCH_DIR / "callback_plugins"
sys.path.insert(0, str(ROOT / "emulator"))

from monoz_emulator.testing import EmulatorProcess, generated_iccid  # noqa: E402

ENDPOINT = "GET Device/Sim/Detail"
TARGET_LIMIT_SHARE = 0.85


class Runner:
    def __init__(self, python: str, workdir: Path, timeout: float) -> None:
        self.workdir = workdir
        self.timeout = timeout
        self.python = python
        self.playbook = str(Path(python).parent / "ansible-playbook")
        if not os.path.exists(self.playbook):
            self.playbook = shutil.which("ansible-playbook") or sys.exit("no ansible-playbook found")
        link = workdir / "collections" / "ansible_collections" / "monoz" / "link"
        link.parent.mkdir(parents=True)
        link.symlink_to(ROOT, target_is_directory=True)
        self.inventory = workdir / "inventory.ini"
        self.inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={python}\n")
        self.runs = 0

    def env(self, module_path: bool, timings: Path) -> dict:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("ANSIBLE_", "MONOZ_"))}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(self.workdir / "collections"),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOME": str(self.workdir / "ansible_home"),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible_tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": self.python,
            "BENCH_TIMINGS_FILE": str(timings),
        })
        if module_path:
            env["MONOZ_EXECUTION"] = "module"
        return env

    def run(self, emu: EmulatorProcess, latency_ms: float, playbook: str, count: int, concurrency: int,
            module_path: bool = False) -> dict:
        emu.reset()
        if latency_ms:
            emu.set_faults(latency_ms=latency_ms)
        self.runs += 1
        vars_file = self.workdir / f"vars-{self.runs}.json"
        timings = self.workdir / f"timings-{self.runs}.json"
        vars_file.write_text(json.dumps({
            "bench_api_url": emu.api_url, "bench_org": emu.org, "bench_api_key": emu.api_key,
            "bench_iccids": [generated_iccid(index) for index in range(count)], "bench_concurrency": concurrency,
        }))
        started = time.perf_counter()
        proc = subprocess.run([self.playbook, "-i", str(self.inventory), str(PLAYBOOKS / playbook),
                               "-e", f"@{vars_file}"], env=self.env(module_path, timings), cwd=self.workdir,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=self.timeout,
                              check=False)
        wall = time.perf_counter() - started
        stats = emu.stats()
        answered = stats.get("by_endpoint", {}).get(ENDPOINT, {})
        tasks = [task for task in json.loads(timings.read_text())["tasks"] if task.get("end")] \
            if timings.exists() else []
        first = tasks[0] if tasks else None
        result = {
            "playbook": playbook, "devices": count, "concurrency": concurrency, "module_path": module_path,
            "rc": proc.returncode, "wall_s": wall,
            "task_s": (first["end"] - first["start"]) if first else None,
            "verified": proc.returncode == 0 and answered == {"200": count} and stats["requests"] == count,
            "emulator_answers": answered,
        }
        items = [stamp for stamp, _status in first["items"]] if first else []
        if len(items) >= 2:
            result["first_item_s"] = items[0] - first["start"]
            result["per_item_s"] = (items[-1] - items[0]) / (len(items) - 1)
        if not result["verified"]:
            result["stdout_tail"] = proc.stdout[-3000:]
            result["stderr_tail"] = proc.stderr[-2000:]
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--devices", type=int, default=10000, help="M, devices read by the module (10,000)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="emulated API latency (50 ms)")
    parser.add_argument("--concurrency", type=int, default=32, help="C (32)")
    parser.add_argument("--loop-devices", type=int, default=100, help="N, devices of the uri loop (100)")
    parser.add_argument("--python", default=sys.executable, help="interpreter whose venv has ansible-playbook")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per playbook run")
    args = parser.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="monoz-bench-modules-"))
    runner = Runner(args.python, workdir, args.timeout)
    m, c, n, latency = args.devices, args.concurrency, args.loop_devices, args.latency_ms
    print(f"monoz_device_info benchmark: M={m:,} devices, latency {latency:g} ms, C={c}, uri loop N={n}",
          flush=True)
    try:
        with EmulatorProcess(devices=max(m, n), latency_ms=latency, python=sys.executable,
                             start_timeout=300) as emu:
            fleet = runner.run(emu, latency, "device_info_fleet.yml", m, c)
            module = runner.run(emu, latency, "device_info_fleet.yml", m, c, module_path=True)
            loop = runner.run(emu, latency, "device_info_uri_loop.yml", n, c)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    limit = c / (latency / 1000.0) if latency else None
    rows = []
    for label, run in (("monoz_device_info, default path", fleet), ("monoz_device_info, module process", module)):
        rate = m / run["task_s"] if run["task_s"] else None
        rows.append((label, m, run["task_s"], run["wall_s"], rate, run["verified"]))
    uri_rate = 1 / loop["per_item_s"] if loop.get("per_item_s") else None
    uri_m_s = loop["per_item_s"] * m if loop.get("per_item_s") else None
    rows.append((f"uri loop ({n} devices, per item {loop.get('per_item_s', 0):.3f} s)", n, loop["task_s"],
                 loop["wall_s"], uri_rate, loop["verified"]))
    print(f"{'approach':<48} {'devices':>8} {'task s':>9} {'wall s':>9} {'devices/s':>10}  verified")
    for label, count, task_s, wall_s, rate, verified in rows:
        print(f"{label:<48} {count:>8,} {task_s or 0:>9.1f} {wall_s:>9.1f} {rate or 0:>10.1f}  {verified}")
    if limit:
        print(f"{'limit C / latency':<48} {'':>8} {'':>9} {'':>9} {limit:>10.1f}")
    figures = {
        "devices": m, "latency_ms": latency, "concurrency": c, "loop_devices": n,
        "module_rate": rows[0][4], "module_process_rate": rows[1][4], "uri_rate": uri_rate,
        "uri_extrapolated_s_for_m": uri_m_s, "limit": limit,
        "share_of_limit": rows[0][4] / limit if limit and rows[0][4] else None,
        "speedup_over_uri": rows[0][4] / uri_rate if uri_rate and rows[0][4] else None,
        "runs": {"fleet": fleet, "module": module, "uri_loop": loop},
    }
    if figures["share_of_limit"] is not None:
        verdict = "meets" if figures["share_of_limit"] >= TARGET_LIMIT_SHARE else "misses"
        print(f"monoz_device_info reaches {figures['share_of_limit']:.0%} of C / latency ({verdict} the"
              f" {TARGET_LIMIT_SHARE:.0%} target); {figures['speedup_over_uri'] or 0:.0f}x the uri loop, which"
              f" would take {uri_m_s or 0:,.0f} s for {m:,} devices")
    print(json.dumps(figures, default=str))
    ok = all(run["verified"] for run in (fleet, module, loop))
    if not ok:
        print("a run did not verify at the emulator; see runs[...] above", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
