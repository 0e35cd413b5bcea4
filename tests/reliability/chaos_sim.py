#!/usr/bin/env python3
"""Chaos SIM state: monoz.link.monoz_sim disables a fleet against an emulator that misbehaves on purpose.

    python tests/reliability/chaos_sim.py --devices 2000

A quarter of the fleet is disabled beforehand (faults off).  Then one
monoz_sim task sets every SIM to ``disabled`` while the emulator answers 5% of
requests 503, 2% 429 (``Retry-After: 1``), drops 1% of connections and
answers 1% with 500 (never retried: a server error may have taken effect).
Whatever failed is fixed by re-running the very same task, with the
transient faults still on but no more 500s.

A recording proxy between the module and the emulator is the independent
witness of every request the module sent (rel_recorder.py).  Checked:

- the fleet converges (the task reports 0 failed) within the allowed re-runs,
  and the emulator holds every SIM disabled;
- no PUT at all, in any run, for a SIM that was already disabled;
- exactly one PUT answered 200 for each SIM that needed the change (a PUT
  the emulator answered with an injected fault did not take effect), and no
  PUT in a re-run for a SIM the first run changed;
- each run's summary adds up, and its changed/unchanged counts match the
  PUTs the proxy saw answered 200;
- a disabled SIM's device receives nothing: downlinks to a sample of the
  fleet reach none of them (after a barrier);
- the API key appears in no output, log or result (rel_support.Ansible).

``run_sim_chaos`` runs in the reliability suite at 2,000 SIMs (test_chaos_sim.py).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rel_recorder import RecordingProxy  # noqa: E402
from rel_support import API_KEY, ORG, Ansible, Emu, EmulatorProcess, collections_root, iccid  # noqa: E402

CHAOS_FAULTS: dict[str, Any] = {"rates": {"503": 0.05, "429": 0.02, "drop": 0.01, "500": 0.01}, "retry_after": 1}
TRANSIENT_FAULTS: dict[str, Any] = {"rates": {"503": 0.05, "429": 0.02, "drop": 0.01}, "retry_after": 1}
DEVICE_SAMPLE = 25


@dataclass
class SimChaosFigures:
    devices: int
    already_disabled: int = 0
    converged: bool = False
    reruns_needed: int = 0
    puts_for_sims_already_right: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.converged and not self.problems and self.puts_for_sims_already_right == 0

    def text(self) -> str:
        lines = [
            f"SIMs:                         {self.devices:,} ({self.already_disabled:,} already disabled)",
            f"converged:                    {self.converged}",
            f"re-runs needed:               {self.reruns_needed}",
            f"PUTs for SIMs already right:  {self.puts_for_sims_already_right}",
        ]
        for number, run in enumerate(self.runs):
            label = "first run" if number == 0 else f"re-run {number}"
            lines.append(
                f"  {label}: rc={run['rc']} {run['elapsed']:.1f}s {run['summary']}; requests {run['requests']:,}"
                f" (GET {run['gets']:,}, PUT {run['puts']:,}); emulator answers {run['by_status']}"
                f" dropped={run['dropped']}"
            )
        lines.append(f"elapsed:                      {self.elapsed:.1f}s")
        lines += [f"PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)


def _disable_directly(emu: Emu, devices: list[str]) -> None:
    """Set up the fleet's starting state through the API, faults off, without the module."""
    with requests.Session() as session:
        for device in devices:
            response = session.put(f"{emu.process.api_url}/{ORG}/Sim/Enable", timeout=30,
                                   headers={"X-API-Key": emu.api_key},
                                   json={"ICCID": device, "Enable": False})
            assert response.status_code == 200, response.text


def run_sim_chaos(ansible: Ansible, emu: Emu, devices: int, *, faults: dict[str, Any] | None = None,
                  rerun_faults: dict[str, Any] | None = None, max_reruns: int = 1, concurrency: int = 32,
                  retries: int | None = None, echo=None) -> SimChaosFigures:
    started = time.monotonic()
    faults = CHAOS_FAULTS if faults is None else faults
    rerun_faults = TRANSIENT_FAULTS if rerun_faults is None else rerun_faults
    fleet = [iccid(index) for index in range(devices)]
    already = set(fleet[::4])
    needs_change = set(fleet) - already
    figures = SimChaosFigures(devices=devices, already_disabled=len(already))
    problems = figures.problems
    _disable_directly(emu, sorted(already))

    put_200: Counter = Counter()
    changed_first: set = set()
    previous = emu.process.stats()
    with RecordingProxy(emu.process.api_url) as proxy:
        creds = emu.creds(rel_api_url=proxy.api_url)
        args = {"devices": fleet, "state": "disabled", "concurrency": concurrency}
        if retries is not None:
            args["retries"] = retries
        for number in range(max_reruns + 1):
            proxy.clear()
            emu.process.set_faults(**(faults if number == 0 else rerun_faults))
            run = ansible.run("sim.yml", {**creds, "rel_args": args}, verbosity=0)
            emu.process.set_faults()
            emu.quiesce()
            stats = emu.process.stats()
            records = proxy.snapshot()
            by_status = {code: count - previous["by_status"].get(code, 0) for code, count in stats["by_status"].items()
                         if count - previous["by_status"].get(code, 0)}
            dropped = stats["dropped"] - previous["dropped"]
            previous = stats
            result = run.result
            summary = result.get("summary", {})
            puts = [record for record in records if record.method == "PUT"]
            figures.runs.append({
                "rc": run.rc, "elapsed": run.elapsed, "summary": summary, "requests": len(records),
                "gets": len(records) - len(puts), "puts": len(puts), "by_status": dict(sorted(by_status.items())),
                "dropped": dropped,
            })
            if echo:
                echo(f"run {number}: rc={run.rc} {run.elapsed:.1f}s {summary}")
            if not summary:
                problems.append(f"run {number}: no summary\n{run.describe()}")
                break
            if summary["total"] != devices or sum(summary[key] for key in summary if key != "total") != devices:
                problems.append(f"run {number}: summary does not add up to {devices}: {summary}")
            # The witness: every PUT, with what the emulator answered.
            wrong_body = [record for record in puts if record.body != {"ICCID": record.iccid, "Enable": False}]
            if wrong_body:
                problems.append(f"run {number}: {len(wrong_body)} PUT(s) with an unexpected body: {wrong_body[:3]}")
            figures.puts_for_sims_already_right += sum(1 for record in puts if record.iccid in already)
            succeeded = Counter(record.iccid for record in puts if record.status == 200)
            put_200.update(succeeded)
            changed = {row["iccid"] for row in result["results"] if row["status"] == "changed"}
            if set(succeeded) != changed:
                problems.append(f"run {number}: 'changed' rows and PUTs answered 200 differ on "
                                f"{sorted(set(succeeded) ^ changed)[:10]}")
            if summary["changed"] != len(succeeded):
                problems.append(f"run {number}: {summary['changed']} changed, {len(succeeded)} PUTs answered 200")
            if (run.rc == 0) != (summary["failed"] == 0):
                problems.append(f"run {number}: rc {run.rc} with {summary['failed']} failed\n{run.describe()}")
            if number == 0:
                changed_first = changed
                if not by_status.get("503") or not by_status.get("500") or not dropped:
                    problems.append(f"first run: too few faults injected to call this chaos: {by_status} dropped "
                                    f"{dropped}")
            else:
                figures.reruns_needed = number
                again = {record.iccid for record in puts} & changed_first
                if again:
                    problems.append(f"re-run {number}: PUT for {len(again)} SIM(s) the first run changed")
            if summary["failed"] == 0:
                figures.converged = True
                break

    twice = sorted(device for device, count in put_200.items() if count > 1)
    if twice:
        problems.append(f"{len(twice)} SIM(s) got more than one successful PUT: {twice[:10]}")
    missing = sorted(needs_change - set(put_200))
    if figures.converged and missing:
        problems.append(f"{len(missing)} SIM(s) that needed the change never got a successful PUT: {missing[:10]}")
    still_enabled = [device for device in fleet if emu.process.device_state(device)["enabled"]]
    if still_enabled:
        problems.append(f"{len(still_enabled)} SIM(s) still enabled at the emulator: {still_enabled[:10]}")
    # Device side: a disabled SIM's device receives nothing.
    sample = fleet[1:1 + 4 * DEVICE_SAMPLE:4]  # none of them was disabled beforehand
    with requests.Session() as session:
        for device in sample:
            response = session.post(emu.process.publish_url, headers={"X-API-Key": emu.api_key}, timeout=30,
                                    json={"ICCID": device, "Topic": "", "Message": "are you there", "QoS": 1,
                                          "Format": 1})
            if response.status_code != 200:
                problems.append(f"downlink to disabled {device}: HTTP {response.status_code}")
    emu.barrier()
    heard = [device for device in sample if emu.process.received(device)]
    if heard:
        problems.append(f"{len(heard)} device(s) of disabled SIMs received a downlink: {heard[:10]}")
    figures.elapsed = time.monotonic() - started
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--max-reruns", type=int, default=1)
    parser.add_argument("--seed", type=int, default=None, help="seed of the emulator's random faults")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="monoz-chaos-sim-"))
    collections = collections_root(workdir / "collections")
    ansible = Ansible(collections, workdir / "run", verbosity=0)
    with EmulatorProcess(devices=args.devices, org=ORG, api_key=API_KEY, start_timeout=120) as process:
        figures = run_sim_chaos(ansible, Emu(process), args.devices, faults=dict(CHAOS_FAULTS, seed=args.seed),
                                max_reruns=args.max_reruns, concurrency=args.concurrency,
                                echo=lambda line: print(line, flush=True))
    print(figures.text(), flush=True)
    import shutil
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
