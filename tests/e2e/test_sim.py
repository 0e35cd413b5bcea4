"""monoz_sim against the emulator: a disabled SIM's device receives nothing; a second run sends no PUT."""

from __future__ import annotations

from e2e_support import iccid
from module_calls import UNKNOWN_ICCID, calls, device_topic, endpoint_count, publish


def test_a_disabled_sims_device_receives_nothing_until_it_is_enabled_again(emu, ansible, execution):
    device, neighbour = iccid(220), iccid(221)
    run = calls(ansible, "sim.yml", [{"iccid": device, "state": "disabled"}], emu)

    assert run.rc == 0, run.describe()
    result = run.call(0)
    assert (result["changed"], result["enabled"]) == (True, False)
    assert result["diff"] == {"before": {"enabled": True}, "after": {"enabled": False}}
    assert emu.device_state(device)["enabled"] is False
    # The API still accepts downlinks for it; the device gets none of them.
    publish(emu, device, "while-off", retain=True)
    publish(emu, neighbour, "to-the-neighbour")
    assert emu.received_exactly(neighbour, 1)[0]["payload"] == "to-the-neighbour"
    assert emu.received_exactly(device, 0) == []

    run = calls(ansible, "sim.yml", [{"iccid": device, "state": "enabled"}], emu)

    assert run.rc == 0, run.describe()
    assert (run.call(0)["changed"], run.call(0)["enabled"]) == (True, True)
    # Back online, the device subscribes again and the retained message reaches it.
    received = emu.received_exactly(device, 1)
    assert received == [{"topic": device_topic(device), "payload": "while-off", "qos": 1, "retain": True}]


def test_a_second_run_reads_every_sim_and_sends_no_put(emu, ansible, execution):
    devices = [iccid(n) for n in range(222, 242)]
    first = calls(ansible, "sim.yml", [{"devices": devices[:5], "state": "disabled"}], emu)
    assert first.rc == 0, first.describe()
    assert endpoint_count(emu, "PUT Sim/Enable") == 5

    run = calls(ansible, "sim.yml", [{"devices": devices, "state": "disabled", "concurrency": 8},
                                     {"devices": devices, "state": "disabled", "concurrency": 8}], emu)

    assert run.rc == 0, run.describe()
    converge, again = run.calls
    assert [r["status"] for r in converge["results"]] == ["unchanged"] * 5 + ["changed"] * 15
    assert converge["summary"] == {"total": 20, "changed": 15, "unchanged": 5, "would_change": 0, "failed": 0}
    assert again["changed"] is False
    assert again["summary"]["unchanged"] == 20
    assert again["diff"] == []
    # 5 PUTs by the first playbook, 15 by the converging call, none by the re-run.
    assert endpoint_count(emu, "PUT Sim/Enable") == 20
    assert endpoint_count(emu, "GET Sim/Enable") == 5 + 20 + 20
    assert all(emu.device_state(device)["enabled"] is False for device in devices)


def test_check_mode_reads_and_changes_nothing_and_shows_the_diff(emu, ansible, execution):
    devices = [iccid(242), iccid(243)]
    calls(ansible, "sim.yml", [{"iccid": devices[1], "state": "disabled"}], emu)
    puts_before = endpoint_count(emu, "PUT Sim/Enable")

    run = ansible.run("sim_diff.yml", {"e2e_profile": emu.profile(), "e2e_devices": devices, "e2e_state": "disabled"},
                      check=True, env={"ANSIBLE_DIFF_ALWAYS": "true"})

    assert run.rc == 0, run.describe()
    result = run.result
    assert result["changed"] is True
    assert [(r["status"], r["before"], r["after"]) for r in result["results"]] == [
        ("would_change", True, False), ("unchanged", False, False)]
    assert endpoint_count(emu, "PUT Sim/Enable") == puts_before
    assert emu.device_state(devices[0])["enabled"] is True
    # The diff the callback prints names the SIM and the change.
    assert f"before: ICCID {devices[0]}" in run.stdout, run.describe()
    assert '-    "enabled": true' in run.stdout and '+    "enabled": false' in run.stdout, run.describe()
    assert f"ICCID {devices[1]}" not in run.stdout


def test_an_unknown_sim_fails_and_the_others_still_change(emu, ansible, execution):
    devices = [iccid(244), UNKNOWN_ICCID, iccid(245)]
    run = calls(ansible, "sim.yml", [{"devices": devices, "state": "disabled"}], emu)

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert [r["status"] for r in result["results"]] == ["changed", "failed", "changed"]
    assert result["results"][1]["msg"].startswith(f"HTTP 404 Not Found for ICCID {UNKNOWN_ICCID}: ")
    assert (result["results"][1]["before"], result["results"][1]["after"]) == (None, None)
    assert result["changed"] is True
    assert emu.device_state(devices[0])["enabled"] is False and emu.device_state(devices[2])["enabled"] is False


def test_a_500_on_the_read_fails_that_sim_without_retry_or_change(emu, ansible, execution):
    device, other = iccid(246), iccid(247)
    emu.update_faults(per_iccid={device: [500]})
    run = calls(ansible, "sim.yml", [{"devices": [device, other], "state": "disabled", "retries": 3}], emu)

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert result["results"][0]["status"] == "failed"
    assert result["results"][0]["msg"].startswith(f"HTTP 500 Internal Server Error for ICCID {device}")
    assert result["results"][1]["status"] == "changed"
    assert endpoint_count(emu, "GET Sim/Enable") == 2
    assert endpoint_count(emu, "PUT Sim/Enable") == 1
    assert emu.device_state(device)["enabled"] is True
