#!/usr/bin/env python3
"""Chaos push: monoz.link.fleet_push against an emulator that misbehaves on purpose.

    python tests/reliability/chaos_push.py --devices 20000      # what `make chaos` runs

The emulator answers 5% of requests 503, 2% 429 with ``Retry-After: 1``,
drops 1% of connections without an answer and answers 1% with 500 (which the
module never retries: the vendor documents it as a server error that may have
taken effect).  The role pushes one message to every device with a journal
and a report.  Whatever failed is pushed again by re-running the very same
playbook, which the journal turns into "only what is missing"; re-runs keep
the transient faults (503, 429, drops) but, unless ``--rerun-faults same``,
no longer inject 500s: the "server error" incident is over, the flaky
network is not.

Counted at the simulated devices over MQTT, after a barrier that proves
every publish arrived:

- delivered: devices that received the message (exactly the right payload);
- duplicated: devices that received it more than once;
- lost: devices that never received it after the last re-run;
- re-runs needed: how many re-runs it took until the report said 0 failed.

It also checks that no device confirmed (HTTP 200, journaled) in the first run
received a second copy later, that each report's counts match what the devices
saw, and that the API key appears in no output, log, journal or report.
Exit status 0 only when nothing is lost or duplicated and every check held.

The same function, ``run_chaos``, runs in ``make test`` at 2,000 devices
(test_chaos.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rel_support import (  # noqa: E402
    API_KEY, ORG, Ansible, Emu, EmulatorProcess, collections_root, iccid, read_journal,
)

CHAOS_FAULTS: dict[str, Any] = {"rates": {"503": 0.05, "429": 0.02, "drop": 0.01, "500": 0.01}, "retry_after": 1}
TRANSIENT_FAULTS: dict[str, Any] = {"rates": {"503": 0.05, "429": 0.02, "drop": 0.01}, "retry_after": 1}


@dataclass
class ChaosFigures:
    devices: int
    delivered: int = 0
    duplicated: int = 0
    lost: int = 0
    reruns_needed: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and self.lost == 0 and self.duplicated == 0

    def text(self) -> str:
        lines = [
            f"devices:        {self.devices:,}",
            f"delivered:      {self.delivered:,}",
            f"duplicated:     {self.duplicated:,}",
            f"lost:           {self.lost:,}",
            f"re-runs needed: {self.reruns_needed}",
        ]
        for number, run in enumerate(self.runs):
            label = "first run" if number == 0 else f"re-run {number}"
            lines.append(
                f"  {label}: rc={run['rc']} {run['elapsed']:.1f}s sent={run['sent']:,} failed={run['failed']:,}"
                f" skipped={run['skipped']:,}; devices newly served={run['newly_received']:,};"
                f" emulator answers {run['by_status']} dropped={run['dropped']}"
            )
        lines.append(f"elapsed:        {self.elapsed:.1f}s")
        lines += [f"PROBLEM: {problem}" for problem in self.problems]
        return "\n".join(lines)


def run_chaos(ansible: Ansible, emu: Emu, devices: int, workdir: Path, *, faults: dict[str, Any] | None = None,
              rerun_faults: dict[str, Any] | None = None, max_reruns: int = 1, concurrency: int = 32,
              batch_size: int = 1000, retries: int | None = None, echo=None) -> ChaosFigures:
    started = time.monotonic()
    faults = CHAOS_FAULTS if faults is None else faults
    rerun_faults = TRANSIENT_FAULTS if rerun_faults is None else rerun_faults
    fleet = [iccid(index) for index in range(devices)]
    fleet_set = set(fleet)
    journal = workdir / "chaos-journal.jsonl"
    report = workdir / "chaos-report.json"
    message = {"apn": "iot.chaos.example", "push": uuid.uuid4().hex}
    payload = json.dumps(message, separators=(",", ":"))
    extra_vars = {
        "fleet_push_org_id": emu.process.org,
        "fleet_push_api_key": emu.api_key,
        "fleet_push_api_url": emu.process.api_url,
        "fleet_push_devices": fleet,
        "fleet_push_payload": message,
        "fleet_push_qos": 1,
        "fleet_push_concurrency": concurrency,
        "fleet_push_batch_size": batch_size,
        "fleet_push_journal": str(journal),
        "fleet_push_report": str(report),
    }
    if retries is not None:
        extra_vars["fleet_push_retries"] = retries
    figures = ChaosFigures(devices=devices)
    problems = figures.problems
    confirmed_first: set[str] = set()
    seen: dict[str, int] = {}
    previous_stats: dict[str, Any] = {"by_status": {}, "dropped": 0}

    for number in range(max_reruns + 1):
        emu.process.set_faults(**(faults if number == 0 else rerun_faults))
        before = set(seen)
        run = ansible.run("fleet_push.yml", extra_vars, secret_files=(journal, report))
        emu.process.set_faults()
        emu.quiesce()  # nothing in flight: the counters are final
        total_stats = emu.process.stats()
        # The emulator's counters are cumulative: this run's share.
        stats = {
            "by_status": {code: count - previous_stats["by_status"].get(code, 0)
                          for code, count in total_stats["by_status"].items()
                          if count - previous_stats["by_status"].get(code, 0)},
            "dropped": total_stats["dropped"] - previous_stats["dropped"],
        }
        emu.barrier()  # every publish so far has reached the devices
        previous_stats = emu.process.stats()  # the barrier's own request belongs to no run
        receipts = emu.receipts()
        seen = {device: len(messages) for device, messages in receipts.items()}
        if not report.exists():
            problems.append(f"run {number}: no report written\n{run.describe()}")
            break
        summary = json.loads(report.read_text())["summary"]
        rows = json.loads(report.read_text())["devices"]
        records, unreadable = read_journal(journal)
        journaled = [record["iccid"] for record in records]
        newly = set(seen) - before
        figures.runs.append({
            "rc": run.rc, "elapsed": run.elapsed, "sent": summary["sent"], "failed": summary["failed"],
            "skipped": summary["skipped"], "newly_received": len(newly),
            "by_status": dict(sorted(stats["by_status"].items())), "dropped": stats["dropped"],
        })
        if echo:
            echo(f"run {number}: rc={run.rc} {run.elapsed:.1f}s {summary}")
        # The report's counts against what the devices saw.
        if summary["total"] != devices or summary["sent"] + summary["failed"] + summary["skipped"] != devices:
            problems.append(f"run {number}: report summary does not add up to {devices}: {summary}")
        if summary["sent"] != len(newly):
            problems.append(f"run {number}: report says {summary['sent']} sent, devices newly served {len(newly)}")
        sent_rows = {row["iccid"] for row in rows if row["status"] == "sent"}
        if sent_rows != newly:
            problems.append(f"run {number}: report rows 'sent' differ from devices served: "
                            f"{sorted(sent_rows ^ newly)[:10]}")
        if summary["skipped"] != len(before):
            problems.append(f"run {number}: {summary['skipped']} skipped, but {len(before)} were confirmed earlier")
        if unreadable:
            problems.append(f"run {number}: {unreadable} unreadable journal line(s)")
        if len(journaled) != len(set(journaled)):
            problems.append(f"run {number}: journal lists {len(journaled) - len(set(journaled))} device(s) twice")
        if set(journaled) != set(seen):
            problems.append(f"run {number}: journal and devices disagree on {len(set(journaled) ^ set(seen))} ICCIDs")
        if (run.rc == 0) != (summary["failed"] == 0):
            problems.append(f"run {number}: rc {run.rc} with {summary['failed']} failed\n{run.describe()}")
        if number == 0:
            confirmed_first = set(journaled)
            if not stats["by_status"].get("503") or not stats["by_status"].get("429") or not stats["dropped"]:
                problems.append(f"first run: the emulator injected too few faults to call this chaos: {stats}")
        else:
            figures.reruns_needed = number
        if summary["failed"] == 0:
            break

    final = emu.receipts()
    wrong = sorted(device for device, messages in final.items()
                   if any(message["payload"] != payload for message in messages))
    strangers = sorted(set(final) - fleet_set)
    figures.delivered = sum(1 for device in fleet if final.get(device))
    figures.duplicated = sum(1 for device in fleet if len(final.get(device, ())) > 1)
    figures.lost = devices - figures.delivered
    resent = sorted(device for device in confirmed_first if len(final.get(device, ())) > 1)
    if resent:
        problems.append(f"{len(resent)} device(s) confirmed in the first run got another copy: {resent[:10]}")
    if wrong:
        problems.append(f"{len(wrong)} device(s) received a wrong payload: {wrong[:10]}")
    if strangers:
        problems.append(f"{len(strangers)} device(s) outside the fleet received something: {strangers[:10]}")
    records, final_unreadable = read_journal(journal)
    if {record["iccid"] for record in records} != {device for device in fleet if final.get(device)}:
        problems.append("the final journal does not list exactly the devices that received the message")
    figures.elapsed = time.monotonic() - started
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--devices", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--max-reruns", type=int, default=3,
                        help="re-runs allowed before the still-missing devices count as lost (default 3)")
    parser.add_argument("--rerun-faults", choices=("transient", "same"), default="transient",
                        help="faults during re-runs: 503/429/drop only (default) or the full chaos incl. 500")
    parser.add_argument("--seed", type=int, default=None, help="seed of the emulator's random faults")
    parser.add_argument("--verbosity", type=int, default=0, help="ansible-playbook -v count (default 0)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (journal, report, logs)")
    args = parser.parse_args(argv)

    faults = dict(CHAOS_FAULTS, seed=args.seed)
    rerun = dict(CHAOS_FAULTS if args.rerun_faults == "same" else TRANSIENT_FAULTS)
    workdir = Path(tempfile.mkdtemp(prefix="monoz-chaos-"))
    print(f"chaos push: {args.devices:,} devices, faults {faults['rates']}, re-runs with "
          f"{rerun['rates']}, concurrency {args.concurrency}, batches of {args.batch_size}; work dir {workdir}",
          flush=True)
    collections = collections_root(workdir / "collections")
    ansible = Ansible(collections, workdir / "run", verbosity=args.verbosity)
    # The barrier device 12345678 is registered by the emulator on top of --devices.
    with EmulatorProcess(devices=args.devices, org=ORG, api_key=API_KEY, start_timeout=120) as process:
        figures = run_chaos(ansible, Emu(process), args.devices, workdir, faults=faults, rerun_faults=rerun,
                            max_reruns=args.max_reruns, concurrency=args.concurrency,
                            batch_size=args.batch_size, echo=lambda line: print(line, flush=True))
    print(figures.text(), flush=True)
    if not args.keep:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if figures.ok else 1


if __name__ == "__main__":
    sys.exit(main())
