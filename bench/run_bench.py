#!/usr/bin/env python3
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fleet push benchmark of monoz.link: uri loops, the module, the role, and the limits.

    python bench/run_bench.py            # full run (make bench), ~10 minutes
    python bench/run_bench.py --quick    # small N/M (make bench QUICK=1), < 2 minutes, writes results/quick.*
    python bench/run_bench.py --python /path/to/venv/bin/python   # that venv's ansible-playbook

For each scenario (emulated API latency, devices M, concurrency C) it starts the
emulator (emulator/monoz_emulator, stopped by PID), then measures, for the same
devices and the same message:

  1. ansible.builtin.uri in a loop over N devices
  2. monoz.link.monoz_downlink single mode in a loop over N devices, in-process on
     the controller (action plugin) and as a module process (MONOZ_DOWNLINK_EXECUTION=module)
  3. monoz.link.monoz_downlink batch mode over M devices at concurrency C
  4. the monoz.link.fleet_push role over M devices (when roles/fleet_push exists)
  5. a raw pooled requests client (C threads, one Session, pool C), and C / latency
  6. the emulator's capacity (aiohttp clients, high concurrency)

After every run it checks with the emulator that every device received its
message over MQTT and that the API saw exactly the requests expected; a run
that did not deliver is reported as such and fails the benchmark (exit 1).
See bench/README.md for the method.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
EMULATOR_DIR = ROOT / "emulator"
PLAYBOOKS = BENCH_DIR / "playbooks"
CALLBACKS = BENCH_DIR / "callback_plugins"
DEFAULT_RESULTS = BENCH_DIR / "results"
ROLE_MAIN = ROOT / "roles" / "fleet_push" / "tasks" / "main.yml"

sys.path.insert(0, str(EMULATOR_DIR))

try:
    import psutil
except ImportError:  # pragma: no cover
    sys.exit("run_bench.py needs psutil: pip install -r requirements/bench.txt")

from monoz_emulator.testing import EmulatorProcess, generated_iccid  # noqa: E402

MESSAGE = {"apn": "iot.example", "interval": 300}
MESSAGE_TEXT = json.dumps(MESSAGE, separators=(",", ":"))
MB = 1024 * 1024

# Targets of issue 5.
TARGET_LIMIT_SHARE = 0.85      # batch >= 85 % of C / latency at 50 ms
TARGET_URI_FACTOR = 100.0      # batch >= 100x the uri loop's msgs/s
TARGET_RAW_SHARE = 0.50        # latency 0: batch >= 50 % of the raw pooled client
TARGET_SINGLE_FACTOR = 5.0     # single-mode loop: >= 5x fewer seconds per item than uri
TARGET_RSS_MB = 300.0          # 100,000-device push: peak RSS of the tree
# Targets of issue 15.
TARGET_ROLE_SHARE = 0.90       # fleet_push role >= 90 % of the batch module (latency 0 and 50 ms, C = 32)
TARGET_FAR_BATCH_SHARE = 0.85  # latency 200 ms, C = 256: batch >= 85 % of C / latency
TARGET_FAR_ROLE_SHARE = 0.80   # ... and the role >= 80 %
# Ratios of two runs (role vs batch, a loop vs its debug floor) are judged on
# the median of this many runs of each.
RATIO_ROUNDS = 3
RATIO_STEPS = ("batch", "role", "debug_loop", "debug_loop_args", "single_controller", "single_env")
RATIO_SCENARIOS = ("lat0", "lat50")
FLEET_MODULE_PLAYBOOKS = {
    "device_info": "device_info_fleet.yml",
    "sim": "sim_fleet.yml",
    "sim_reset": "sim_reset_fleet.yml",
}
TARGET_FLAT_FACTOR = 1.15      # role from a CSV at 3x the memory run's fleet: <= 1.15x its peak RSS
TARGET_LOOP_FACTOR = 1.5       # single-mode loop: per item within 1.5x of a debug loop
FAR_LATENCY_MS = 200.0
FAR_CONCURRENCY = 256


# --------------------------------------------------------------------------------------
# measurement helpers
# --------------------------------------------------------------------------------------
class TreeSampler:
    """Samples the RSS of a process and all its descendants every `interval` seconds."""

    def __init__(self, pid: int, interval: float = 0.05, pss_interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        # PSS (shared pages divided among their sharers) does not count twice
        # the pages a forked worker shares with ansible-playbook; reading it
        # costs tens of ms for a big process, so it is sampled less often.
        self.pss_interval = pss_interval
        self.peak_pss = 0
        self._next_pss = 0.0
        self.peak_sum = 0
        self.peak_single = 0
        self.peak_procs = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return
        total = 0
        for proc in procs:
            try:
                rss = proc.memory_info().rss
            except psutil.Error:
                continue
            total += rss
            self.peak_single = max(self.peak_single, rss)
        self.peak_sum = max(self.peak_sum, total)
        now = time.monotonic()
        if now >= self._next_pss:
            self._next_pss = now + self.pss_interval
            self.peak_pss = max(self.peak_pss, sum(pss_bytes(proc.pid) for proc in procs))
        self.peak_procs = max(self.peak_procs, len(procs))
        self.samples += 1

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval)


def pss_bytes(pid: int) -> int:
    """Proportional set size of one process (Linux smaps_rollup), 0 if unreadable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    """user+sys CPU of a live process and its live descendants."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            pass
    return total


def run_process(cmd: list, env: dict, timeout: float, log_dir: Path, name: str) -> dict:
    """Run one command; wall time, exit code, peak tree RSS, CPU of the whole (waited) tree."""
    out_path = log_dir / f"{name}.stdout"
    err_path = log_dir / f"{name}.stderr"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=err, cwd=str(log_dir))
        with TreeSampler(proc.pid) as sampler:
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()  # our own child, by PID
                proc.wait()
                rc = "timeout"
        wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "rc": rc,
        "wall_s": wall,
        "cpu_s": cpu,
        "peak_rss_mb": sampler.peak_sum / MB,
        "peak_rss_single_mb": sampler.peak_single / MB,
        "peak_pss_mb": sampler.peak_pss / MB,
        "peak_procs": sampler.peak_procs,
        "rss_samples": sampler.samples,
        "stdout": out_path.read_text(errors="replace"),
        "stderr": err_path.read_text(errors="replace"),
    }


def tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.python = args.python
        self.playbook_bin = str(Path(self.python).parent / "ansible-playbook")
        if not os.path.exists(self.playbook_bin):
            found = shutil.which("ansible-playbook")
            if not found:
                sys.exit(f"no ansible-playbook next to {self.python} nor on PATH")
            self.playbook_bin = found
        # Ansible finds the collection through a symlink to the repo root.
        collections = workdir / "collections"
        link = collections / "ansible_collections" / "monoz" / "link"
        link.parent.mkdir(parents=True)
        link.symlink_to(args.collection_root, target_is_directory=True)
        self.collections = collections
        self.inventory = workdir / "inventory.ini"
        self.inventory.write_text(
            f"localhost ansible_connection=local ansible_python_interpreter={self.python}\n", encoding="utf-8"
        )
        self.failures: list[str] = []
        self.counter = 0

    # -- environment -------------------------------------------------------------------
    def ansible_env(self, module_path: bool = False, timings: Path | None = None, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MONOZ_"))}
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": str(self.collections),
            "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
            "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
            "ANSIBLE_CALLBACKS_ENABLED": "bench_timer",
            "ANSIBLE_RETRY_FILES_ENABLED": "false",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_HOME": str(self.workdir / "ansible_home"),
            "ANSIBLE_LOCAL_TEMP": str(self.workdir / "ansible_tmp"),
            "ANSIBLE_PYTHON_INTERPRETER": self.python,
            "ANSIBLE_DEPRECATION_WARNINGS": "false",
        })
        if timings is not None:
            env["BENCH_TIMINGS_FILE"] = str(timings)
        if module_path:
            env["MONOZ_DOWNLINK_EXECUTION"] = "module"
        env.update(extra or {})
        return env

    # -- emulator bookkeeping ------------------------------------------------------------
    def prepare(self, emu: EmulatorProcess, latency_ms: float) -> None:
        emu.reset()  # clears messages, received store, stats and faults
        if latency_ms:
            emu.set_faults(latency_ms=latency_ms)

    def verify(self, emu: EmulatorProcess, expected: int, devices: int) -> dict:
        """Did every device receive its message, and did the API see exactly `expected` requests?"""
        timeout = max(30.0, expected / 200.0)
        counts = emu.received_counts(wait_total=expected, timeout=timeout)
        time.sleep(0.2)  # late duplicates would show up here
        counts = emu.received_counts()
        stats = emu.stats()
        by_device = counts["by_device"]
        sample_key = f"{emu.org}/{generated_iccid(devices - 1)}" if devices else None
        payload_ok = True
        if devices:
            got = emu.received(generated_iccid(devices - 1))
            payload_ok = bool(got) and all(r.get("payload") == MESSAGE_TEXT for r in got)
        ok = (
            counts["total"] == expected
            and len(by_device) == devices
            and all(v == expected // max(devices, 1) for v in by_device.values())
            and stats.get("requests") == expected
            and stats.get("by_status") == ({"200": expected} if expected else {})
            and payload_ok
        )
        return {
            "ok": ok,
            "received": counts["total"],
            "devices_reached": len(by_device),
            "api_requests": stats.get("requests"),
            "api_by_status": stats.get("by_status"),
            "payload_ok": payload_ok,
            "sample": sample_key,
        }

    def emulator_cpu(self, emu: EmulatorProcess) -> float:
        return cpu_seconds(emu.pid)

    # -- runners -----------------------------------------------------------------------
    def _device_files(self, count: int) -> tuple[Path, Path]:
        """The fleet as a one-ICCID-per-line file and as a CSV file (written once per size)."""
        text_path = self.workdir / f"iccids-{count}.txt"
        csv_path = self.workdir / f"fleet-{count}.csv"
        if not text_path.exists():
            iccids = "".join(generated_iccid(i) + "\n" for i in range(count))
            text_path.write_text(iccids, encoding="ascii")
            csv_path.write_text("iccid\n" + iccids, encoding="ascii")
        return text_path, csv_path

    def _vars_file(self, emu: EmulatorProcess, count: int, concurrency: int, inline: bool = True,
                   batch_size: int | None = None) -> Path:
        """Extra vars of one run; with inline=False the ICCIDs are only in files the play reads."""
        self.counter += 1
        path = self.workdir / f"vars-{self.counter}.json"
        text_path, csv_path = self._device_files(count)
        data = {
            "bench_api_url": emu.api_url,
            "bench_org": emu.org,
            "bench_api_key": emu.api_key,
            "bench_iccids": [generated_iccid(i) for i in range(count)] if inline else [],
            "bench_iccids_file": str(text_path),
            "bench_csv": str(csv_path),
            "bench_message": MESSAGE,
            "bench_message_text": MESSAGE_TEXT,
            "bench_concurrency": concurrency,
            "bench_batch_size": batch_size or 1000,
            "bench_report": str(self.workdir / f"report-{self.counter}.json"),
        }
        path.write_text(json.dumps(data), encoding="utf-8")
        return path

    def run_playbook(self, emu, latency_ms, playbook: str, count: int, concurrency: int, name: str,
                     module_path: bool = False, inline: bool = True, sends: bool = True,
                     reads: bool = False, credentials_env: bool = False, batch_size: int | None = None) -> dict:
        self.prepare(emu, latency_ms)
        vars_file = self._vars_file(emu, count, concurrency, inline, batch_size)
        timings = self.workdir / f"timings-{self.counter}.json"
        cmd = [self.playbook_bin, "-i", str(self.inventory), str(PLAYBOOKS / playbook), "-e", f"@{vars_file}"]
        if self.args.profile:
            # Sampling profile of ansible-playbook AND its forked workers (the
            # action plugin runs in a worker); figures of a profiled run are not
            # comparable with unprofiled ones.
            py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
            self.args.profile.mkdir(parents=True, exist_ok=True)
            out = self.args.profile / f"{sc_name(latency_ms)}-{name}.txt"
            # --nonblocking: pausing 256 threads for every sample would
            # slow the push itself several times over.
            cmd = [py_spy, "record", "--nonblocking", "--subprocesses", "--threads", "--rate", "100", "--format", "raw",
                   "-o", str(out), "--", *cmd]
        cpu0 = self.emulator_cpu(emu)
        extra = None
        if credentials_env:
            # As an AWX/AAP custom credential injects them.
            extra = {"MONOZ_API_URL": emu.api_url, "MONOZ_ORG_ID": emu.org, "MONOZ_API_KEY": emu.api_key}
        proc = run_process(cmd, self.ansible_env(module_path, timings, extra), self.args.timeout, self.workdir,
                           f"{self.counter}-{name}")
        emu_cpu = self.emulator_cpu(emu) - cpu0
        expected = count if sends else 0
        if reads:
            # Fleet modules other than monoz_downlink publish nothing: the
            # play asserts every device's outcome, the emulator counts requests.
            stats = emu.stats()
            by_status = stats.get("by_status") or {}
            check = {"ok": proc["rc"] == 0 and set(by_status) == {"200"}, "api_requests": stats.get("requests"),
                     "by_status": by_status}
        else:
            check = self.verify(emu, expected, expected)
        stamps = [m["ts"] for m in emu.messages() if "ts" in m]
        try:
            tdata = json.loads(timings.read_text())
        except (OSError, ValueError):
            tdata = {"tasks": []}
        tasks = [t for t in tdata["tasks"] if t.get("start") is not None]
        ends = [t["end"] for t in tasks if t.get("end") is not None]
        tasks_s = (max(ends) - tasks[0]["start"]) if tasks and ends else None
        result = {
            "name": name, "playbook": playbook, "devices": count, "concurrency": concurrency, "sends": sends,
            "module_path": module_path, "rc": proc["rc"], "wall_s": proc["wall_s"], "tasks_s": tasks_s,
            "cpu_s": proc["cpu_s"], "peak_rss_mb": proc["peak_rss_mb"], "peak_pss_mb": proc["peak_pss_mb"],
            "peak_rss_single_mb": proc["peak_rss_single_mb"], "peak_procs": proc["peak_procs"],
            "emulator_cpu_s": emu_cpu, "delivery": check, "task_count": len(tasks),
            "api_requests": check.get("api_requests"),
        }
        # Where the task time goes: before the first request the API accepted
        # (templating, argument validation, building bodies), the sending
        # itself, and after the last one (results back to the controller).
        if stamps and tasks and ends:
            result["send_phase_s"] = max(stamps) - min(stamps)
            result["before_first_send_s"] = min(stamps) - tasks[0]["start"]
            result["after_last_send_s"] = max(ends) - max(stamps)
        # Loops: the steady per-item cost from the gaps between item results
        # (the first item also pays the worker's fork and imports).
        loop_tasks = [t for t in tasks if len(t.get("items", [])) >= 2]
        if loop_tasks:
            items = [stamp for stamp, _status in loop_tasks[0]["items"]]
            result["first_item_s"] = items[0] - loop_tasks[0]["start"]
            result["per_item_s"] = (items[-1] - items[0]) / (len(items) - 1)
        if proc["rc"] != 0 or not check["ok"]:
            self.failures.append(f"{name}: rc={proc['rc']} delivery={check}")
            result["stdout_tail"] = tail(proc["stdout"])
            result["stderr_tail"] = tail(proc["stderr"])
        return result

    def run_client(self, emu, latency_ms, client: str, count: int, concurrency: int, name: str,
                   processes: int = 1) -> dict:
        self.prepare(emu, latency_ms)
        self.counter += 1
        cmd = [sys.executable, str(BENCH_DIR / "clients.py"), client, "--url", emu.publish_url, "--key", emu.api_key,
               "--count", str(count), "--concurrency", str(concurrency), "--processes", str(processes),
               "--message", MESSAGE_TEXT]
        cpu0 = self.emulator_cpu(emu)
        proc = run_process(cmd, dict(os.environ), self.args.timeout, self.workdir, f"{self.counter}-{name}")
        emu_cpu = self.emulator_cpu(emu) - cpu0
        check = self.verify(emu, count, count)
        try:
            out = json.loads(proc["stdout"].strip().splitlines()[-1])
        except (ValueError, IndexError):
            out = {"send_seconds": None, "codes": {}}
        result = {
            "name": name, "client": client, "devices": count, "concurrency": concurrency, "processes": processes,
            "rc": proc["rc"], "wall_s": proc["wall_s"], "tasks_s": out["send_seconds"], "cpu_s": proc["cpu_s"],
            "peak_rss_mb": proc["peak_rss_mb"], "peak_pss_mb": proc["peak_pss_mb"],
            "peak_rss_single_mb": proc["peak_rss_single_mb"],
            "peak_procs": proc["peak_procs"], "emulator_cpu_s": emu_cpu, "delivery": check, "codes": out["codes"],
        }
        if proc["rc"] != 0 or not check["ok"]:
            self.failures.append(f"{name}: rc={proc['rc']} delivery={check}")
            result["stderr_tail"] = tail(proc["stderr"])
        return result


def sc_name(latency_ms: float) -> str:
    return f"lat{latency_ms:g}"


# --------------------------------------------------------------------------------------
# scenarios
# --------------------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def rate(result: dict) -> float | None:
    seconds = result.get("tasks_s")
    return result["devices"] / seconds if seconds else None


def run_scenario(bench: Bench, sc: dict) -> dict:
    latency, m, c, n = sc["latency_ms"], sc["devices"], sc["concurrency"], sc["loop_devices"]
    # The loops of a few milliseconds an item are run longer: their
    # per-item ratios are judged, and 50 items are over in a tenth of a second.
    n_fast = sc.get("fast_loop_devices") or n
    runs: dict = {}
    log(f"scenario {sc['name']}: latency {latency} ms, M={m:,}, C={c}, loop N={n}")
    start = time.perf_counter()
    load_before = os.getloadavg()
    with EmulatorProcess(devices=m, latency_ms=latency, python=sys.executable, start_timeout=120) as emu:
        log(f"  emulator pid {emu.pid} ready at {emu.api_url} in {time.perf_counter() - start:.1f} s")
        steps = []
        if sc["loops"]:
            steps += [
                ("debug_loop", lambda: bench.run_playbook(emu, latency, "debug_loop.yml", n_fast, c, "debug_loop",
                                                          sends=False)),
                ("uri_loop", lambda: bench.run_playbook(emu, latency, "uri_loop.yml", n, c, "uri_loop")),
                ("debug_loop_args", lambda: bench.run_playbook(emu, latency, "debug_loop_args.yml", n_fast, c,
                                                               "debug_loop_args", sends=False)),
                ("single_controller", lambda: bench.run_playbook(emu, latency, "downlink_loop.yml", n_fast, c,
                                                                 "single_controller")),
                ("single_env", lambda: bench.run_playbook(emu, latency, "downlink_loop_env.yml", n_fast, c,
                                                          "single_env", credentials_env=True)),
                ("single_module", lambda: bench.run_playbook(emu, latency, "downlink_loop.yml", n, c,
                                                             "single_module", module_path=True)),
            ]
        if sc["memory"] and not sc.get("memory_role_only"):
            # The fleet as extra vars (as the other scenarios pass it) costs
            # ansible-core itself more than the push: measure that floor, then
            # the push both ways.
            steps.append(("vars_floor", lambda: bench.run_playbook(emu, latency, "hold_vars.yml", m, c, "vars_floor",
                                                                   sends=False)))
            steps.append(("batch_file", lambda: bench.run_playbook(emu, latency, "downlink_batch_file.yml", m, c,
                                                                   "batch_file", inline=False)))
        if not sc.get("memory_role_only"):
            steps.append(("batch", lambda: bench.run_playbook(emu, latency, "downlink_batch.yml", m, c, "batch")))
        if sc.get("fleet_modules"):
            for key, playbook in FLEET_MODULE_PLAYBOOKS.items():
                steps.append((key, lambda playbook=playbook, key=key: bench.run_playbook(
                    emu, latency, playbook, m, c, key, sends=False, reads=True)))
        has_role = (bench.args.collection_root / ROLE_MAIN.relative_to(ROOT)).exists()
        if not has_role:
            log("  roles/fleet_push/tasks/main.yml does not exist: role not measured")
        if has_role and sc["memory"]:
            steps.append(("role_csv", lambda: bench.run_playbook(emu, latency, "fleet_push_csv.yml", m, c, "role_csv",
                                                                 inline=False)))
        if has_role and sc["role"]:
            steps.append(("role", lambda: bench.run_playbook(emu, latency, "fleet_push.yml", m, c, "role")))
        if has_role and sc.get("big_batches"):
            # The scaling guide's advice at high concurrency: batches of ten
            # times the concurrency, so a batch's first and last wave of
            # requests (paid once per batch) weigh less.
            steps.append(("role_big_batches", lambda: bench.run_playbook(
                emu, latency, "fleet_push.yml", m, c, "role_big_batches", batch_size=10 * c)))
        if sc["clients"]:
            steps.append(("raw", lambda: bench.run_client(emu, latency, "raw", m, c, "raw")))
            steps.append(("capacity", lambda: bench.run_client(
                emu, latency, "aiohttp", sc["capacity_devices"], sc["capacity_concurrency"], "capacity",
                processes=sc["capacity_processes"])))
        for key, step in steps:
            if bench.args.steps and key not in bench.args.steps:
                continue
            log(f"  {key} ...")
            rounds = RATIO_ROUNDS if key in RATIO_STEPS and sc["name"] in RATIO_SCENARIOS else 1
            tries = [step() for _ in range(rounds)]
            # The run of median task time: one noisy run on a shared 2-core
            # machine moves a ratio of two runs by several points.
            # Loops by their steady per-item cost, the others by task time.
            result = sorted(tries, key=lambda run: run.get("per_item_s") or run["tasks_s"] or float("inf"))[
                len(tries) // 2]
            if rounds > 1:
                result["rounds_msgs_per_s"] = [rate(run) for run in tries]
            runs[key] = result
            r = rate(result)
            log(f"  {key}: wall {result['wall_s']:.2f} s, tasks {result['tasks_s'] or 0:.2f} s, "
                f"{r or 0:,.1f} msg/s, peak RSS {result['peak_rss_mb']:.0f} MB, "
                f"delivered {'OK' if result['delivery']['ok'] else 'NO ' + json.dumps(result['delivery'])}")
    return {**sc, "runs": runs, "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
            "seconds": time.perf_counter() - start}


# --------------------------------------------------------------------------------------
# derived figures, targets, report
# --------------------------------------------------------------------------------------
def derive(sc: dict) -> list:
    """Table rows of one scenario (measured, extrapolated and theoretical), with ratios."""
    runs, m, c, lat = sc["runs"], sc["devices"], sc["concurrency"], sc["latency_ms"]
    limit = c / (lat / 1000.0) if lat else None
    rows = []

    def row(key, label, kind, run=None, **fig):
        r = {"key": key, "label": label, "kind": kind}
        if run is not None:
            r.update({
                "devices": run["devices"], "wall_s": run["wall_s"], "tasks_s": run["tasks_s"],
                "msgs_per_s": rate(run), "ms_per_device": (1000 * run["tasks_s"] / run["devices"])
                if run["tasks_s"] else None,
                "peak_rss_mb": run["peak_rss_mb"], "peak_pss_mb": run["peak_pss_mb"], "cpu_s": run["cpu_s"], "emulator_cpu_s": run["emulator_cpu_s"],
                "delivered": run["delivery"]["ok"], "rc": run["rc"],
            })
            for phase in ("before_first_send_s", "send_phase_s", "after_last_send_s", "rounds_msgs_per_s"):
                if phase in run:
                    r[phase] = run[phase]
        r.update(fig)
        rows.append(r)
        return r

    labels = {
        "debug_loop": "(0) floor: ansible.builtin.debug loop, nothing sent",
        "uri_loop": "(1) ansible.builtin.uri loop",
        "debug_loop_args": "(0) floor: ansible.builtin.debug loop templating the five values of (2a), nothing sent",
        "single_controller": "(2a) monoz_downlink single, loop, controller fast path",
        "single_env": "(2c) monoz_downlink single, loop, controller fast path, credentials from MONOZ_* environment",
        "single_module": "(2b) monoz_downlink single, loop, module process",
    }
    for key in ("debug_loop", "debug_loop_args", "uri_loop", "single_controller", "single_env", "single_module"):
        run = runs.get(key)
        if not run:
            continue
        row(key, f"{labels[key]} (N={run['devices']})", "measured", run)
        per_item = run.get("per_item_s")
        if per_item:
            fixed_tasks = run["tasks_s"] - per_item * run["devices"]
            fixed_wall = run["wall_s"] - per_item * run["devices"]
            row(f"{key}_x", f"{labels[key]}, extrapolated to M={m:,}", "extrapolated",
                devices=m, wall_s=fixed_wall + per_item * m, tasks_s=fixed_tasks + per_item * m,
                msgs_per_s=m / (fixed_tasks + per_item * m), ms_per_device=1000 * per_item,
                peak_rss_mb=None, cpu_s=None, emulator_cpu_s=None, delivered=None, rc=None)
    for key in FLEET_MODULE_PLAYBOOKS:
        run = runs.get(key)
        if run and run["tasks_s"]:
            requests_per_s = (run.get("api_requests") or 0) / run["tasks_s"]
            row(key, f"(7) monoz_{key} over the fleet, C={c} ({(run.get('api_requests') or 0) / run['devices']:g} "
                     "API requests per device; % of C÷lat counts requests)", "measured", run,
                pct_limit=100 * requests_per_s / limit if limit else None, requests_per_s=requests_per_s)
    as_vars = ", devices as extra vars" if sc.get("memory") else ""
    if "vars_floor" in runs:
        row("vars_floor", "(0) floor: ansible-playbook holding the devices as extra vars, one debug task, no push",
            "measured", runs["vars_floor"], msgs_per_s=None, ms_per_device=None)
    if "batch_file" in runs:
        row("batch_file", f"(3) monoz_downlink batch, C={c}, devices read from a file by the task", "measured",
            runs["batch_file"])
    if "batch" in runs:
        row("batch", f"(3) monoz_downlink batch, C={c}{as_vars}", "measured", runs["batch"])
    if "role_csv" in runs:
        row("role_csv", f"(4) fleet_push role, C={c}, batch 1000, devices from a CSV file", "measured",
            runs["role_csv"])
    if "role" in runs:
        row("role", f"(4) fleet_push role, C={c}, batch 1000{as_vars}", "measured", runs["role"])
    if "role_big_batches" in runs:
        row("role_big_batches", f"(4) fleet_push role, C={c}, batch {10 * c:,} (10 x C, as docs/scaling.md advises)",
            "measured", runs["role_big_batches"])
    if "raw" in runs:
        row("raw", f"(5) raw requests client, C={c} threads, 1 Session", "measured", runs["raw"])
    if lat:
        row("limit", f"(5) theoretical C / latency = {c} / {lat / 1000:g} s", "theoretical",
            devices=m, wall_s=m / limit, tasks_s=m / limit, msgs_per_s=limit, ms_per_device=1000 / limit,
            peak_rss_mb=None, cpu_s=None, emulator_cpu_s=None, delivered=None, rc=None)
    if "capacity" in runs:
        cap = runs["capacity"]
        row("capacity", f"(6) emulator capacity: aiohttp, {cap['processes']} proc x {cap['concurrency']} conns",
            "measured", cap)

    uri = next((r for r in rows if r["key"] == "uri_loop_x"), None) or next(
        (r for r in rows if r["key"] == "uri_loop"), None)
    raw = next((r for r in rows if r["key"] == "raw"), None)
    for r in rows:
        mps = r.get("msgs_per_s")
        r["x_uri"] = mps / uri["msgs_per_s"] if mps and uri and uri.get("msgs_per_s") else None
        if "requests_per_s" not in r:
            r["pct_limit"] = 100 * mps / limit if mps and limit else None
        r["pct_raw"] = 100 * mps / raw["msgs_per_s"] if mps and raw and raw.get("msgs_per_s") else None
    return rows


def targets(scenarios: list) -> list:
    out = []

    def get(sc, key):
        return next((r for r in sc["rows"] if r["key"] == key), None)

    def add(name, sc, value, goal, holds, detail):
        out.append({"target": name, "scenario": sc["name"], "value": value, "goal": goal,
                    "holds": holds, "detail": detail})

    for sc in scenarios:
        batch, uri, raw = get(sc, "batch"), get(sc, "uri_loop_x"), get(sc, "raw")
        single, uri_m = get(sc, "single_controller"), get(sc, "uri_loop")
        lat, c = sc["latency_ms"], sc["concurrency"]
        role = get(sc, "role")
        if batch and batch["msgs_per_s"] and ((lat == 50 and c == 32) or lat == FAR_LATENCY_MS):
            limit = c / (lat / 1000)
            goal = TARGET_LIMIT_SHARE if lat == 50 else TARGET_FAR_BATCH_SHARE
            share = batch["msgs_per_s"] / limit
            wall_rate = batch["devices"] / batch["wall_s"]
            add(f"batch >= {100 * goal:.0f}% of C/latency", sc,
                f"{batch['msgs_per_s']:.0f} msg/s = {100 * share:.1f}%",
                f">= {goal * limit:.0f} msg/s", share >= goal,
                f"task time; over the whole ansible-playbook process wall: {wall_rate:.0f} msg/s "
                f"= {100 * wall_rate / limit:.1f}%")
        if role and role["msgs_per_s"] and lat == FAR_LATENCY_MS:
            limit = c / (lat / 1000)
            share = role["msgs_per_s"] / limit
            add(f"role >= {100 * TARGET_FAR_ROLE_SHARE:.0f}% of C/latency", sc,
                f"{role['msgs_per_s']:.0f} msg/s = {100 * share:.1f}%",
                f">= {TARGET_FAR_ROLE_SHARE * limit:.0f} msg/s", share >= TARGET_FAR_ROLE_SHARE,
                "fleet_push role, task time")
            tuned = get(sc, "role_big_batches")
            if tuned and tuned["msgs_per_s"]:
                add(f"role with batches of 10 x C >= {100 * TARGET_FAR_ROLE_SHARE:.0f}% of C/latency", sc,
                    f"{tuned['msgs_per_s']:.0f} msg/s = {100 * tuned['msgs_per_s'] / limit:.1f}%",
                    f">= {TARGET_FAR_ROLE_SHARE * limit:.0f} msg/s", None,
                    f"shown, not judged: fleet_push_batch_size {10 * c:,} as docs/scaling.md advises at high"
                    " concurrency; each batch pays one ramp-up and one drain of C requests")
        if role and batch and role["msgs_per_s"] and batch["msgs_per_s"] and lat in (0, 50) and not sc.get("memory"):
            share = role["msgs_per_s"] / batch["msgs_per_s"]
            add(f"role >= {100 * TARGET_ROLE_SHARE:.0f}% of batch", sc, f"{100 * share:.1f}%",
                f">= {100 * TARGET_ROLE_SHARE:.0f}%", share >= TARGET_ROLE_SHARE,
                f"fleet_push role {role['msgs_per_s']:.0f} msg/s vs monoz_downlink batch "
                f"{batch['msgs_per_s']:.0f} msg/s (same M, C and batch size; median of "
                f"{len(role.get('rounds_msgs_per_s') or [0])} runs each: role "
                f"{', '.join(f'{r:.0f}' for r in role.get('rounds_msgs_per_s') or [])}; batch "
                f"{', '.join(f'{r:.0f}' for r in batch.get('rounds_msgs_per_s') or [])} msg/s)")
        if batch and uri and batch["msgs_per_s"] and uri["msgs_per_s"]:
            factor = batch["msgs_per_s"] / uri["msgs_per_s"]
            add("batch >= 100x uri loop", sc, f"{factor:,.0f}x", ">= 100x", factor >= TARGET_URI_FACTOR,
                f"batch {batch['msgs_per_s']:.0f} msg/s vs uri loop {uri['msgs_per_s']:.2f} msg/s "
                "(uri extrapolated from its steady per-item cost)")
        if batch and raw and lat == 0 and batch["msgs_per_s"] and raw["msgs_per_s"]:
            share = batch["msgs_per_s"] / raw["msgs_per_s"]
            add("latency 0: batch >= 50% of raw client", sc, f"{100 * share:.1f}%", ">= 50%",
                share >= TARGET_RAW_SHARE,
                f"batch {batch['msgs_per_s']:.0f} msg/s vs raw {raw['msgs_per_s']:.0f} msg/s at C={c}")
        run_single = sc["runs"].get("single_controller")
        run_uri = sc["runs"].get("uri_loop")
        if run_single and run_uri and run_single.get("per_item_s") and run_uri.get("per_item_s"):
            factor = run_uri["per_item_s"] / run_single["per_item_s"]
            add("single-mode loop >= 5x fewer s/item than uri", sc, f"{factor:.1f}x", ">= 5x",
                factor >= TARGET_SINGLE_FACTOR,
                f"uri {1000 * run_uri['per_item_s']:.0f} ms/item vs fast path "
                f"{1000 * run_single['per_item_s']:.1f} ms/item (module path "
                f"{1000 * sc['runs']['single_module'].get('per_item_s', 0):.0f} ms/item)"
                if "single_module" in sc["runs"] else "")
        for key in FLEET_MODULE_PLAYBOOKS:
            r = get(sc, key)
            if r and r.get("pct_limit") is not None and lat == 50:
                add(f"monoz_{key} >= {100 * TARGET_LIMIT_SHARE:.0f}% of C/latency", sc,
                    f"{r['requests_per_s']:.0f} req/s = {r['pct_limit']:.1f}%",
                    f">= {TARGET_LIMIT_SHARE * c / (lat / 1000):.0f} req/s", r["pct_limit"] >= 100 * TARGET_LIMIT_SHARE,
                    f"{r['msgs_per_s']:.0f} devices/s; task time")
        # Judged at latency 0: at 50 ms every single send waits out the latency itself.
        # Each loop is set against the debug loop that templates as many
        # values per item: ansible-core templates every argument again for
        # every item, whatever the action.
        loop_pairs = (
            ("single_env", "debug_loop", True, "one templated value per item (the ICCID; credentials from the "
             "MONOZ_* environment, as an AWX credential injects them)"),
            ("single_controller", "debug_loop_args", True, "five templated values per item against a debug loop "
             "templating the same five"),
            ("single_controller", "debug_loop", None, "five templated values per item against a debug loop "
             "templating one: shown, not judged (the four extra values cost ansible-core, not the module)"),
        )
        for single_key, debug_key, judged, what in loop_pairs:
            run_loop, run_debug = sc["runs"].get(single_key), sc["runs"].get(debug_key)
            if not (run_loop and run_debug and run_loop.get("per_item_s") and run_debug.get("per_item_s") and lat == 0):
                continue
            factor = run_loop["per_item_s"] / run_debug["per_item_s"]
            add(f"single-mode loop ({single_key}) within {TARGET_LOOP_FACTOR:g}x of a debug loop ({debug_key})", sc,
                f"{factor:.2f}x", f"<= {TARGET_LOOP_FACTOR:g}x", (factor <= TARGET_LOOP_FACTOR) if judged else None,
                f"{what}: {1000 * run_loop['per_item_s']:.1f} ms/item vs {1000 * run_debug['per_item_s']:.1f} ms/item")
        del single, uri_m
        if sc.get("memory"):
            floor = get(sc, "vars_floor")
            quick = "" if sc["devices"] >= 100_000 else " (quick mode: fewer devices than the target's 100,000)"
            for key in ("batch_file", "role_csv", "batch", "role"):
                r = get(sc, key)
                if not r:
                    continue
                detail = (f"peak PSS sum (shared pages counted once, sampled every 1 s): {r['peak_pss_mb']:.0f} MB"
                          + quick)
                holds = r["peak_rss_mb"] <= TARGET_RSS_MB
                if key in ("batch", "role") and floor:
                    # Not judged: ansible-core alone, holding the same extra
                    # vars and pushing nothing, is already at the floor.
                    holds = None
                    detail = (f"the fleet as extra vars: ansible-playbook holding them and pushing nothing peaks at "
                              f"{floor['peak_rss_mb']:.0f} MB (row 0), so the push adds "
                              f"{r['peak_rss_mb'] - floor['peak_rss_mb']:.0f} MB; {detail}")
                add(f"{sc['devices']:,}-device push peak RSS <= 300 MB ({key})", sc,
                    f"{r['peak_rss_mb']:.0f} MB", f"<= {TARGET_RSS_MB:.0f} MB", holds,
                    "sum of RSS over ansible-playbook and all its children, sampled every 50 ms "
                    "(counts twice the copy-on-write pages a forked worker shares with its parent); " + detail)
    small = next((get(sc, "role_csv") for sc in scenarios if sc["name"] == "memory"), None)
    big_sc = next((sc for sc in scenarios if sc["name"] == "memory3x"), None)
    big = get(big_sc, "role_csv") if big_sc else None
    if small and big:
        ratio = big["peak_rss_mb"] / small["peak_rss_mb"]
        add(f"role from a CSV: {big['devices']:,}-device peak RSS <= {TARGET_FLAT_FACTOR:g}x its "
            f"{small['devices']:,}-device peak and <= {TARGET_RSS_MB:.0f} MB", big_sc,
            f"{big['peak_rss_mb']:.0f} MB = {ratio:.2f}x", f"<= {TARGET_FLAT_FACTOR:g}x, <= {TARGET_RSS_MB:.0f} MB",
            ratio <= TARGET_FLAT_FACTOR and big["peak_rss_mb"] <= TARGET_RSS_MB,
            f"{small['devices']:,} devices: {small['peak_rss_mb']:.0f} MB; sum of RSS over ansible-playbook and "
            "its children, sampled every 50 ms")
    return out


def fmt(value, spec: str, dash: str = "–") -> str:
    if value is None:
        return dash
    return format(value, spec)


def markdown(report: dict) -> str:
    lines = [
        f"## monoz.link fleet push benchmark{' (QUICK mode)' if report['quick'] else ''}",
        "",
        f"{report['started']} · {report['machine']['cpu']} · {report['machine']['cores']} cores · "
        f"Python {report['machine']['python']} · ansible-core {report['machine']['ansible_core']} · "
        f"git {report['machine']['git']}",
        "",
        "*msgs/s* = devices ÷ *tasks s* (first task start to last task end, from the controller's callback; "
        "for the clients, the sending loop); *wall s* = the whole process (ansible-playbook start-up included). "
        "*Peak RSS* = sum over the process and all its children, sampled every 50 ms. "
        "*Extrapolated* rows (†) are computed from the measured loop's steady per-item cost; "
        "nothing there was run at that size. ✓ = the emulator confirmed every device received "
        "its message and the API saw exactly one request per message.",
        "",
    ]
    for sc in report["scenarios"]:
        lat = sc["latency_ms"]
        lines += [
            f"### {sc['title']}",
            "",
            f"Load average (1 min) on this {report['machine']['cores']}-core machine: "
            f"{sc['loadavg_before'][0]:.1f} before, {sc['loadavg_after'][0]:.1f} after the scenario "
            f"({sc['seconds']:.0f} s).",
            "",
            "| approach | devices | wall s | tasks s | msgs/s | ms/device | peak RSS MB | peak PSS MB | CPU s "
            "| emu CPU s | × uri | % of C÷lat | % of raw | delivered |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|",
        ]
        for r in sc["rows"]:
            mark = " †" if r["kind"] == "extrapolated" else ""
            delivered = {True: "✓", False: "✗ FAILED", None: "–"}[r.get("delivered")]
            lines.append(
                f"| {r['label']}{mark} | {r['devices']:,} | {fmt(r['wall_s'], ',.1f')} | {fmt(r['tasks_s'], ',.2f')} "
                f"| {fmt(r['msgs_per_s'], ',.1f')} | {fmt(r['ms_per_device'], ',.2f')} "
                f"| {fmt(r.get('peak_rss_mb'), ',.0f')} | {fmt(r.get('peak_pss_mb'), ',.0f')} "
                f"| {fmt(r.get('cpu_s'), ',.1f')} "
                f"| {fmt(r.get('emulator_cpu_s'), ',.1f')} | {fmt(r['x_uri'], ',.1f')} "
                f"| {fmt(r['pct_limit'], '.1f')} | {fmt(r['pct_raw'], '.1f')} | {delivered} |"
            )
        if not lat:
            lines.append("")
            lines.append("Latency 0: no theoretical C ÷ latency limit; the raw client is the practical limit.")
        phased = [r for r in sc["rows"] if r.get("send_phase_s") is not None and r["devices"] > 1
                  and not r["key"].startswith(("uri", "single"))]
        if phased:
            lines += ["", "Where the task time goes (from the controller's task start and the emulator's "
                      "timestamps of the first and last accepted request):", "",
                      "| approach | before first request s | sending s | sending msgs/s | after last request s |",
                      "|---|---:|---:|---:|---:|"]
            for r in phased:
                send = r["send_phase_s"]
                lines.append(f"| {r['label']} | {r['before_first_send_s']:.2f} | {send:.2f} "
                             f"| {fmt(r['devices'] / send if send else None, ',.0f')} | {r['after_last_send_s']:.2f} |")
        lines.append("")
    lines += ["### Targets", "", "| target | scenario | measured | goal | holds | detail |", "|---|---|---:|---:|:-:|---|"]
    for t in report["targets"]:
        lines.append(f"| {t['target']} | {t['scenario']} | {t['value']} | {t['goal']} | "
                     f"{'–' if t['holds'] is None else 'HOLD' if t['holds'] else '**MISS**'} | {t['detail']} |")
    if report["failures"]:
        lines += ["", "### Delivery or run failures", ""] + [f"- {f}" for f in report["failures"]]
    lines.append("")
    return "\n".join(lines)


def chart(report: dict, path: Path) -> str | None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install -r requirements/bench.txt): no chart"
    scenarios = [sc for sc in report["scenarios"] if not sc.get("memory")] or report["scenarios"]
    fig, axes = plt.subplots(1, len(scenarios), figsize=(7.5 * len(scenarios), 6.0), squeeze=False)
    colours = {"measured": "#3b6ea5", "extrapolated": "#9db7d5", "theoretical": "#c44e52"}
    for ax, sc in zip(axes[0], scenarios):
        rows = [r for r in sc["rows"] if r.get("msgs_per_s")]
        labels = [r["label"].replace(" (", "\n(", 1) if len(r["label"]) > 40 else r["label"] for r in rows]
        values = [r["msgs_per_s"] for r in rows]
        bars = ax.barh(range(len(rows)), values, color=[colours[r["kind"]] for r in rows])
        ax.set_xscale("log")
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels([r["label"] + (" †" if r["kind"] == "extrapolated" else "") for r in rows], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("messages per second (log scale)")
        ax.set_title(sc["title"], fontsize=9)
        for bar, value in zip(bars, values):
            ax.text(value * 1.08, bar.get_y() + bar.get_height() / 2, f"{value:,.1f}", va="center", fontsize=7)
        ax.set_xlim(min(values) / 2, max(values) * 6)
        ax.grid(axis="x", which="both", alpha=0.3)
        del labels
    fig.suptitle("monoz.link fleet push: messages per second per approach"
                 f"{' (QUICK)' if report['quick'] else ''}  († extrapolated, red = theoretical C ÷ latency)",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return None


def machine_info(python: str) -> dict:
    def run(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False).stdout.strip()
        except OSError:
            return "?"
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024 ** 3, 1),
        "python": run([python, "-c", "import platform; print(platform.python_version())"]),
        "ansible_core": run([python, "-c", "import ansible.release as r; print(r.__version__)"]),
        "git": run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"]) + (
            "+dirty" if run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "plugins", "roles"]) else ""),
        "platform": platform.platform(),
    }


def scenarios_for(args: argparse.Namespace) -> list:
    q = args.quick
    n = args.loop_devices or (5 if q else 50)
    m = args.devices or (500 if q else 10_000)
    mem = args.memory_devices or (3_000 if q else 100_000)
    c = args.concurrency
    cap = {"capacity_devices": 2_000 if q else 20_000, "capacity_concurrency": 256, "capacity_processes": 2}
    out = [
        {"name": "lat50", "title": f"Latency 50 ms, M = {m:,}, C = {c}", "latency_ms": 50.0, "devices": m,
         "concurrency": c, "loop_devices": n, "loops": True, "role": True, "clients": True, "memory": False, "fleet_modules": True,
         **cap},
        {"name": "lat0", "title": f"Latency 0, M = {m:,}, C = {c}", "latency_ms": 0.0, "devices": m,
         "concurrency": c, "loop_devices": n, "fast_loop_devices": 10 * n, "loops": True, "role": True, "clients": True, "memory": False, **cap},
        {"name": "lat200", "title": f"Internet latency {FAR_LATENCY_MS:g} ms, M = {m:,}, C = {FAR_CONCURRENCY}",
         "latency_ms": FAR_LATENCY_MS, "devices": m, "concurrency": FAR_CONCURRENCY, "loop_devices": n,
         "loops": False, "role": True, "big_batches": True, "clients": True, "memory": False, **cap},
        {"name": "memory", "title": f"Memory run: latency 0, M = {mem:,}, C = {c}", "latency_ms": 0.0,
         "devices": mem, "concurrency": c, "loop_devices": n, "loops": False, "role": args.memory_role,
         "clients": False, "memory": True, **cap},
    ]
    # The same role run at three times the fleet: memory must stay flat in fleet size.
    out.append({"name": "memory3x", "title": f"Memory run: latency 0, M = {3 * mem:,}, C = {c}", "latency_ms": 0.0,
                "devices": 3 * mem, "concurrency": c, "loop_devices": n, "loops": False, "role": False,
                "clients": False, "memory": True, "memory_role_only": True, **cap})
    if args.only:
        out = [sc for sc in out if sc["name"] in args.only]
    for sc in out:
        sc["capacity_devices"] = min(sc["capacity_devices"], sc["devices"])
    return out


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="small N/M: finishes in under two minutes")
    parser.add_argument("--python", default=sys.executable,
                        help="interpreter of the venv whose ansible-playbook runs the playbooks (default: this one)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="output directory (default bench/results)")
    parser.add_argument("--only", nargs="+", choices=("lat50", "lat0", "lat200", "memory", "memory3x"), help="run only these scenarios")
    parser.add_argument("--loop-devices", type=int, help="N for the loops (default 50, quick 5)")
    parser.add_argument("--devices", type=int, help="M for batch/role/raw (default 10,000, quick 500)")
    parser.add_argument("--memory-devices", type=int, help="M of the memory run (default 100,000, quick 3,000)")
    parser.add_argument("--concurrency", type=int, default=32, help="C (default 32)")
    parser.add_argument("--steps", nargs="+",
                        choices=("debug_loop", "debug_loop_args", "uri_loop", "single_controller", "single_env", *FLEET_MODULE_PLAYBOOKS, "single_module", "vars_floor", "batch_file", "batch",
                                 "role_csv", "role", "role_big_batches", "raw", "capacity"),
                        help="run only these approaches (for investigation; targets need them all)")
    parser.add_argument("--memory-role", action="store_true",
                        help="also run the fleet_push role with the devices as extra vars in the memory run "
                             "(slow: 100 batches; the CSV run of the role is always there)")
    parser.add_argument("--collection-root", type=Path, default=ROOT,
                        help="collection to benchmark (default: this checkout); e.g. a patched scratch copy")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds before one run is killed")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="record a py-spy profile (collapsed stacks) of every ansible-playbook run into DIR; "
                             "see bench/profile_summary.py")
    parser.add_argument("--keep-workdir", action="store_true", help="keep the temporary directory (logs, vars, timings)")
    args = parser.parse_args(argv)
    args.python = os.path.abspath(args.python)
    args.collection_root = args.collection_root.resolve()  # not resolved: a venv's bin/python is a symlink

    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="monoz-bench-"))
    bench = Bench(args, workdir)
    report = {
        "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "quick": args.quick,
        "machine": machine_info(args.python),
        "ansible_playbook": bench.playbook_bin,
        "collection_root": str(args.collection_root),
        "message": MESSAGE_TEXT,
        "scenarios": [],
    }
    log(f"ansible-playbook: {bench.playbook_bin} (ansible-core {report['machine']['ansible_core']}); "
        f"work dir {workdir}")
    try:
        for sc in scenarios_for(args):
            result = run_scenario(bench, sc)
            result["rows"] = derive(result)
            report["scenarios"].append(result)
    finally:
        if args.keep_workdir or bench.failures:
            log(f"work dir kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    report["targets"] = targets(report["scenarios"])
    report["failures"] = bench.failures
    report["duration_s"] = time.perf_counter() - started
    text = markdown(report)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    # A quick run never overwrites the full run's figures (the README quotes those).
    stem = "quick" if args.quick else "latest"
    (args.results / f"{stem}.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    (args.results / f"{stem}.md").write_text(text, encoding="utf-8")
    problem = chart(report, args.results / f"{stem}.png")
    if problem:
        log(problem)
    log(f"done in {report['duration_s']:.0f} s; wrote {args.results}/{stem}.{{json,md,png}}")
    return 1 if bench.failures else 0


if __name__ == "__main__":
    sys.exit(main())
