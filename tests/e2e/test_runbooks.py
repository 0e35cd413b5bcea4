"""The runbooks of docs/runbooks/, run as an operator would, against the emulator.

Each runbook runs with real ansible-playbook on a monoz.link.devices
inventory (or a CSV); what it did is checked through independent paths: the
emulator's device state (SIM enabled, connections, counters), its request
counts per endpoint, and what the simulated devices received over MQTT.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from e2e_support import API_KEY, ORG, iccid, isolated_ansible_env, local_controller_files, shows

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
TIMEOUT_S = 180
UNKNOWN_ICCID = "8988280666999999999"
CONFIG = {"apn": "iot.recovered.example", "interval": 300}


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


class Runbooks:
    """Runs docs/runbooks/*.yml with a devices inventory beside it, in a scratch directory."""

    def __init__(self, collections_root: Path, workdir: Path, emu) -> None:
        self.workdir = workdir
        self.emu = emu
        self.controller_inventory, config = local_controller_files(workdir)
        self.env = isolated_ansible_env(collections_root, workdir, config, None)
        self.env.update(MONOZ_ORG_ID=ORG, MONOZ_API_KEY=API_KEY, MONOZ_API_URL=emu.api_url)
        self.playbook_bin = Path(sys.executable).parent / "ansible-playbook"
        self.inventory = workdir / "fleet.monoz.yml"
        self.runs = 0

    def write_inventory(self, rows: list[dict[str, str]]) -> Path:
        write_csv(self.workdir / "fleet.csv", rows)
        self.inventory.write_text(json.dumps({
            "plugin": "monoz.link.devices", "path": "fleet.csv",
            "keyed_groups": [{"key": "monoz_site", "prefix": "site"}],
        }), encoding="utf-8")
        return self.inventory

    def run(self, runbook: str, extra_vars: dict[str, Any], *extra: str) -> subprocess.CompletedProcess:
        self.runs += 1
        vars_file = self.workdir / f"vars-{self.runs}.json"
        vars_file.write_text(json.dumps(extra_vars), encoding="utf-8")
        command = [str(self.playbook_bin), "-i", str(self.controller_inventory)]
        if self.inventory.exists():
            command += ["-i", str(self.inventory)]
        command += [str(RUNBOOKS / runbook), "-e", f"@{vars_file}", *extra]
        proc = subprocess.run(command, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        assert not shows(API_KEY, proc.stdout + proc.stderr)
        return proc


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    columns = list(rows[0])
    lines = [",".join(columns)] + [",".join(row[column] for column in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"rc={proc.returncode}\n--- stdout ---\n{proc.stdout[-8000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"


def fleet(first: int, count: int, sites: str = "ab") -> list[dict[str, str]]:
    return [{"iccid": iccid(first + n), "name": f"dev-{first + n:03d}", "site": sites[n * len(sites) // count],
             "apn": f"apn{n % 2}.example"} for n in range(count)]


def set_sim(emu, device: str, enabled: bool) -> None:
    response = requests.put(f"{emu.api_url}/{ORG}/Sim/Enable", headers={"X-API-Key": API_KEY},
                            json={"ICCID": device, "Enable": enabled}, timeout=30)
    assert response.status_code == 200, response.text


def publish(emu, device: str, message: str) -> None:
    response = requests.post(emu.publish_url, headers={"X-API-Key": API_KEY}, timeout=30,
                             json={"ICCID": device, "Topic": "", "Message": message, "QoS": 1, "Format": 1})
    assert response.status_code == 200, response.text


def endpoint_count(emu, endpoint: str) -> dict[str, int]:
    """{status: count} of the requests the emulator answered on one endpoint."""
    return emu.stats()["by_endpoint"].get(endpoint, {})


@pytest.fixture
def runbooks(collections_root: Path, tmp_path: Path, emu) -> Runbooks:
    return Runbooks(collections_root, tmp_path, emu)


# -- silent devices ------------------------------------------------------------------
def test_silent_devices_are_reset_and_receive_their_configuration_again(runbooks, emu):
    rows = fleet(100, 12)
    devices = [row["iccid"] for row in rows]
    talking, disabled, silent_enabled = devices[:4], devices[4:6], devices[6:]
    for device in talking:
        emu.uplink(device, "status=ok")
    for device in disabled:
        set_sim(emu, device, False)
    before = {device: emu.device_state(device) for device in devices}
    runbooks.write_inventory(rows)
    report = runbooks.workdir / "silent-report.json"

    proc = runbooks.run("silent_devices.yml", {"silent_config": CONFIG, "silent_report": str(report)})

    assert proc.returncode == 0, describe(proc)
    found = json.loads(report.read_text(encoding="utf-8"))
    assert found["watched"] == 12
    assert found["silent"] == disabled + silent_enabled
    assert found["sim_disabled"] == disabled
    assert found["reset"] == silent_enabled
    assert [device["iccid"] for device in found["devices"]] == disabled + silent_enabled
    assert f"SIM reset and configuration re-sent (retained): {', '.join(silent_enabled)}" in proc.stdout
    # The SIM checks only read: the two PUT Sim/Enable are this test's own.
    assert endpoint_count(emu, "PUT Sim/Enable") == {"200": 2}
    assert endpoint_count(emu, "PUT Sim/Reset") == {"200": len(silent_enabled)}
    published = emu.messages()
    assert sorted(m["iccid"] for m in published) == sorted(silent_enabled)
    assert {(m["topic"], m["qos"], m["retain"], m["message"]) for m in published} == {
        ("/config", 1, True, compact(CONFIG))}

    # Each reset device reconnected once and received the configuration over MQTT...
    for device in silent_enabled:
        state = emu.device_state(device)
        assert state["connects"] == before[device]["connects"] + 1, device
        got = emu.received(device, wait_for=1)
        assert got and {(m["topic"], m["payload"]) for m in got} == {(f"/{ORG}/{device}/sub/config", compact(CONFIG))}
        # ...and the broker keeps it retained for the device's next reconnection.
        assert [(m["topic"], m["payload"]) for m in emu.late_subscribe(device)] == [
            (f"/{ORG}/{device}/sub/config", compact(CONFIG))]
    emu.barrier()
    received = emu.all_received()
    for device in talking + disabled:
        assert emu.device_state(device)["connects"] == before[device]["connects"], device
        assert received.get(device, []) == [], device


def test_silent_devices_check_mode_resets_and_sends_nothing(runbooks, emu):
    rows = fleet(120, 6)
    emu.uplink(rows[0]["iccid"], "status=ok")
    runbooks.write_inventory(rows)
    report = runbooks.workdir / "silent-report.json"

    proc = runbooks.run("silent_devices.yml", {"silent_config": CONFIG, "silent_report": str(report)}, "--check")

    assert proc.returncode == 0, describe(proc)
    assert "SIM reset and configuration re-sent (retained): " + ", ".join(r["iccid"] for r in rows[1:]) in proc.stdout
    assert endpoint_count(emu, "PUT Sim/Reset") == {}
    assert emu.messages() == []
    assert not report.exists()


def test_silent_devices_needs_its_configuration(runbooks, emu):
    runbooks.write_inventory(fleet(130, 2))
    proc = runbooks.run("silent_devices.yml", {})
    assert proc.returncode != 0
    assert "silent_devices: set silent_config" in proc.stdout
    assert emu.stats()["requests"] == 0


# -- decommission --------------------------------------------------------------------
def decommission_rows(first: int, count: int) -> list[dict[str, str]]:
    return [{"iccid": iccid(first + n), "customer": f"c{n}", "reason": "returned"} for n in range(count)]


def test_decommission_disables_the_listed_sims_and_reports(runbooks, emu):
    rows = decommission_rows(200, 5)
    devices = [row["iccid"] for row in rows]
    set_sim(emu, devices[2], False)
    csv_path = runbooks.workdir / "returned.csv"
    write_csv(csv_path, rows)
    report = runbooks.workdir / "returned-report.json"

    dry = runbooks.run("decommission.yml", {"decommission_csv": str(csv_path)}, "--check", "--diff")
    assert dry.returncode == 0, describe(dry)
    assert "4 would be disabled (check mode)" in dry.stdout
    assert [emu.device_state(device)["enabled"] for device in devices] == [True, True, False, True, True]
    assert not report.exists()

    proc = runbooks.run("decommission.yml", {"decommission_csv": str(csv_path)})

    assert proc.returncode == 0, describe(proc)
    assert all(emu.device_state(device)["enabled"] is False for device in devices)
    assert emu.device_state(iccid(205))["enabled"] is True  # not listed, not touched
    written = json.loads(report.read_text(encoding="utf-8"))
    assert written["summary"] == {"total": 5, "changed": 4, "unchanged": 1, "would_change": 0, "failed": 0}
    assert [(d["iccid"], d["customer"], d["status"], d["before"], d["after"]) for d in written["devices"]] == [
        (device, f"c{n}", "unchanged" if n == 2 else "changed", n != 2, False) for n, device in enumerate(devices)
    ]
    # A decommissioned device is offline: a downlink is accepted and never reaches it.
    publish(emu, devices[0], "are you there?")
    emu.barrier()
    assert emu.received(devices[0]) == []

    puts = endpoint_count(emu, "PUT Sim/Enable")
    again = runbooks.run("decommission.yml", {"decommission_csv": str(csv_path)})
    assert again.returncode == 0, describe(again)
    assert endpoint_count(emu, "PUT Sim/Enable") == puts  # a re-run sends no PUT
    assert json.loads(report.read_text(encoding="utf-8"))["summary"]["unchanged"] == 5


def test_decommission_reports_a_failed_device_and_fails(runbooks, emu):
    rows = decommission_rows(210, 3)
    rows[1]["iccid"] = UNKNOWN_ICCID
    csv_path = runbooks.workdir / "batch.csv"
    write_csv(csv_path, rows)

    proc = runbooks.run("decommission.yml", {"decommission_csv": str(csv_path)})

    assert proc.returncode != 0
    written = json.loads((runbooks.workdir / "batch-report.json").read_text(encoding="utf-8"))
    assert written["summary"]["failed"] == 1 and written["summary"]["changed"] == 2
    failed = written["devices"][1]
    assert failed["status"] == "failed" and f"HTTP 404 Not Found for ICCID {UNKNOWN_ICCID}" in failed["msg"]
    assert emu.device_state(rows[0]["iccid"])["enabled"] is False
    assert emu.device_state(rows[2]["iccid"])["enabled"] is False


# -- verified rollout ----------------------------------------------------------------
def rollout_template(workdir: Path) -> Path:
    template = workdir / "rollout.json.j2"
    template.write_text('{"name": "{{ device.monoz_name }}", "apn": "{{ device.monoz_apn }}"}\n', encoding="utf-8")
    return template


def test_verified_rollout_confirms_one_downlink_per_device(runbooks, emu):
    rows = fleet(220, 8)
    site_a = [row for row in rows if row["site"] == "a"]
    publish(emu, site_a[0]["iccid"], "earlier message")  # a counter that does not start at zero
    runbooks.write_inventory(rows)
    counts = {row["iccid"]: emu.device_state(row["iccid"])["dl_message_count"] for row in rows}
    emu.received(site_a[0]["iccid"], wait_for=1)

    proc = runbooks.run("verified_rollout.yml", {"rollout_group": "site_a",
                                                 "rollout_template": str(rollout_template(runbooks.workdir))})

    assert proc.returncode == 0, describe(proc)
    assert f"verified_rollout: all {len(site_a)} device(s) got exactly one downlink" in proc.stdout
    for row in rows:
        expected = counts[row["iccid"]] + (1 if row["site"] == "a" else 0)
        assert emu.device_state(row["iccid"])["dl_message_count"] == expected, row
    emu.barrier()
    received = emu.all_received()
    for row in site_a:
        config = json.dumps({"name": row["name"], "apn": row["apn"]})
        assert [m["payload"] for m in received[row["iccid"]]][-1:] == [config], row
        assert len(received[row["iccid"]]) == (2 if row is site_a[0] else 1), row
    assert all(row["iccid"] not in received for row in rows if row["site"] == "b")


def test_verified_rollout_with_one_payload_for_all(runbooks, emu):
    rows = fleet(230, 4)
    runbooks.write_inventory(rows)
    proc = runbooks.run("verified_rollout.yml", {"rollout_group": "site_b", "rollout_payload": CONFIG})
    assert proc.returncode == 0, describe(proc)
    site_b = [row["iccid"] for row in rows if row["site"] == "b"]
    emu.barrier()
    assert {device: [m["payload"] for m in got] for device, got in emu.all_received().items()} == {
        device: [compact(CONFIG)] for device in site_b}


def test_verified_rollout_fails_naming_a_device_that_got_two(runbooks, emu):
    """A device listed twice (here under a second host name in another inventory source) gets the push twice."""
    rows = fleet(240, 6)
    runbooks.write_inventory(rows)
    doubled = rows[0]["iccid"]
    extra = runbooks.workdir / "spares.ini"
    extra.write_text(f"[site_a]\nspare-unit monoz_iccid=\"{doubled}\" monoz_name=spare monoz_apn=x\n", encoding="utf-8")

    proc = runbooks.run("verified_rollout.yml", {"rollout_group": "site_a",
                                                 "rollout_template": str(rollout_template(runbooks.workdir))},
                        "-i", str(extra))

    assert proc.returncode != 0
    assert "verified_rollout: 1 device(s) did not get exactly one downlink" in proc.stdout, describe(proc)
    assert f"ICCID {doubled}: dl_message_count 0 -> 2" in proc.stdout
    assert emu.device_state(doubled)["dl_message_count"] == 2
