"""`make demo`: start the Monoz Link emulator, run the example playbooks, show what devices received.

A developer tool, not part of the built collection.  Everything it starts
(the emulator, its MQTT broker and simulated devices) is stopped by PID when
it ends, also on failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "emulator"))

from monoz_emulator.testing import EmulatorProcess, generated_iccid  # noqa: E402

EXAMPLES = ROOT / "docs" / "examples"
RUNBOOKS = ROOT / "docs" / "runbooks"
# Devices of the runbook step: an inventory of a few devices of the fleet.
RUNBOOK_DEVICES = 12


def banner(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 70 - len(text)), flush=True)


def ansible_env(emulator: EmulatorProcess, collections_path: str) -> dict:
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": collections_path,
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCALHOST_WARNING": "false",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
        "MONOZ_ORG_ID": emulator.org,
        "MONOZ_API_KEY": emulator.api_key,
        "MONOZ_API_URL": emulator.api_url,
    })
    return env


def run_playbook(playbook: Path, env: dict, *extra: str, inventory: Path | None = None) -> None:
    options = ["-i", str(inventory)] if inventory else []
    command = [str(Path(sys.executable).with_name("ansible-playbook")), *options, str(playbook), *extra]
    shown = (["-i", inventory.name] if inventory else []) + [playbook.name, *extra]
    print("$ ansible-playbook " + " ".join(shown), flush=True)
    started = time.monotonic()
    completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
    print(f"({playbook.name} took {time.monotonic() - started:.1f} s)", flush=True)
    if completed.returncode != 0:
        raise SystemExit(f"{playbook.name} failed with exit code {completed.returncode}")


def run_inventory_graph(inventory: Path, env: dict) -> None:
    print(f"$ ansible-inventory -i {inventory.name} --graph", flush=True)
    command = [str(Path(sys.executable).with_name("ansible-inventory")), "-i", str(inventory), "--graph"]
    completed = subprocess.run(command, env=env, cwd=ROOT, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"ansible-inventory failed with exit code {completed.returncode}")


def verified_rollout(emulator: EmulatorProcess, env: dict, workdir: Path) -> None:
    """The verified rollout runbook on an inventory of a few devices (inventory plugin monoz.link.devices)."""
    emulator.reset()
    csv_path = workdir / "demo.monoz.csv"
    with csv_path.open("w", encoding="utf-8") as handle:
        handle.write("iccid,name,site,apn\n")
        for index in range(RUNBOOK_DEVICES):
            site = "north" if index < RUNBOOK_DEVICES // 2 else "south"
            handle.write(f"{generated_iccid(index)},{site}-{index:02d},{site},iot{index % 2}.example\n")
    inventory = workdir / "demo.monoz.yml"
    inventory.write_text(
        "plugin: monoz.link.devices\n"
        f"path: {csv_path.name}\n"
        "keyed_groups:\n  - key: monoz_site\n    prefix: site\n",
        encoding="utf-8",
    )
    template = workdir / "rollout.json.j2"
    template.write_text('{"name": "{{ device.monoz_name }}", "apn": "{{ device.monoz_apn }}", "version": 2}\n',
                        encoding="utf-8")
    run_inventory_graph(inventory, env)
    north = [generated_iccid(index) for index in range(RUNBOOK_DEVICES // 2)]
    before = {iccid: emulator.device_state(iccid)["dl_message_count"] for iccid in north}
    run_playbook(RUNBOOKS / "verified_rollout.yml", env, "-e", "rollout_group=site_north",
                 "-e", f"rollout_template={template}", inventory=inventory)
    after = {iccid: emulator.device_state(iccid)["dl_message_count"] for iccid in north}
    print(f"dl_message_count of site_north, read from the emulator: "
          f"{sum(after[i] - before[i] for i in north)} new downlink(s) for {len(north)} device(s)")
    for iccid in north[:2]:
        show_device(emulator, iccid, expected=1)


def show_device(emulator: EmulatorProcess, iccid: str, expected: int) -> None:
    received = emulator.received(iccid, wait_for=expected, timeout=10)
    print(f"device {iccid} received {len(received)} message(s) over MQTT:")
    for message in received:
        print(f"  topic={message['topic']}  qos={message['qos']}  retain={message['retain']}  payload={message['payload']}")
    if len(received) < expected:
        raise SystemExit(f"expected {expected} messages at device {iccid}, got {len(received)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--collections-path",
        default=os.environ.get("ANSIBLE_COLLECTIONS_PATH") or str(ROOT / "build" / "collections"),
        help="directory holding ansible_collections/monoz/link (default: $ANSIBLE_COLLECTIONS_PATH, else build/collections)",
    )
    parser.add_argument("--devices", type=int, default=1000, help="simulated devices for the fleet push")
    args = parser.parse_args()

    banner("starting the Monoz Link emulator (HTTP API + MQTT broker + simulated devices)")
    with EmulatorProcess(devices=args.devices) as emulator, tempfile.TemporaryDirectory(prefix="monoz-demo-") as workdir:
        print(f"API {emulator.api_url}  org {emulator.org}  MQTT 127.0.0.1:{emulator.mqtt_port}  pid {emulator.pid}")
        env = ansible_env(emulator, args.collections_path)

        banner("1. one device: a text command and a JSON configuration")
        iccid = generated_iccid(0)
        env["DEMO_ICCID"] = iccid
        run_playbook(EXAMPLES / "send_downlink.yml", env)
        show_device(emulator, iccid, expected=2)

        fleet_playbook = EXAMPLES / "fleet_push.yml"
        if fleet_playbook.exists():
            banner(f"2. fleet push: a templated configuration to {args.devices} devices with the fleet_push role")
            emulator.reset()
            report = Path(workdir) / "fleet_push_report.json"
            journal = Path(workdir) / "fleet_push_journal.jsonl"
            csv_path = Path(workdir) / "devices.csv"
            with csv_path.open("w", encoding="utf-8") as handle:
                handle.write("iccid,apn,interval\n")
                for index in range(args.devices):
                    handle.write(f"{generated_iccid(index)},iot{index % 3}.example,{60 * (1 + index % 5)}\n")
            extra = json.dumps({
                "fleet_push_devices_csv": str(csv_path),
                "fleet_push_report": str(report),
                "fleet_push_journal": str(journal),
            })
            run_playbook(fleet_playbook, env, "-e", extra)
            counts = emulator.received_counts(wait_total=args.devices, timeout=60)
            print(f"devices that received their configuration over MQTT: {len(counts['by_device'])} of {args.devices}"
                  f" ({counts['total']} messages)")
            sample = generated_iccid(args.devices - 1)
            show_device(emulator, sample, expected=1)
            summary = json.loads(report.read_text(encoding="utf-8"))["summary"]
            print(f"report {report}: {summary}")
            banner("3. the same push again: the journal makes it a no-op")
            emulator.reset()
            run_playbook(fleet_playbook, env, "-e", extra)
            print(f"messages published on the re-run: {emulator.stats()['published']}")
            # The temporary directory goes away with the demo: keep the report.
            kept = ROOT / "build" / "demo" / "fleet_push_report.json"
            kept.parent.mkdir(parents=True, exist_ok=True)
            kept.write_text(report.read_text(encoding="utf-8"), encoding="utf-8")
            print(f"the report is kept at {kept}")

        banner("4. runbook: verified rollout to an inventory group, each device's downlink counter checked")
        verified_rollout(emulator, env, Path(workdir))
        banner("stopping the emulator")
    print("done: emulator stopped.")


if __name__ == "__main__":
    main()
