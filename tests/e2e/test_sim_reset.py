"""monoz_sim_reset against the emulator: a reset device reconnects and gets its retained message again."""

from __future__ import annotations

from e2e_support import iccid
from module_calls import UNKNOWN_ICCID, calls, device_topic, endpoint_count, publish

UPDATED = {"Error": False, "StatusCode": 200, "Message": "UpdateSuccess"}


def test_a_reset_device_reconnects_and_receives_its_retained_message_again(emu, ansible, execution):
    device, bystander = iccid(230), iccid(231)
    publish(emu, device, "config-v2", retain=True)
    publish(emu, bystander, "bystander-config", retain=True)
    assert len(emu.received_exactly(device, 1)) == 1
    connects = emu.device_state(device)["connects"]

    run = calls(ansible, "sim_reset.yml", [{"iccid": device}], emu)

    assert run.rc == 0, run.describe()
    result = run.call(0)
    assert (result["changed"], result["status_code"], result["response"]) == (True, 200, UPDATED)
    assert emu.device_state(device)["connects"] == connects + 1
    copy = {"topic": device_topic(device), "payload": "config-v2", "qos": 1, "retain": True}
    received = emu.received_exactly(device, 2)
    assert received[0]["payload"] == "config-v2" and received[1] == copy
    # Only the reset device subscribed again.
    assert len(emu.received_exactly(bystander, 1)) == 1


def test_check_mode_sends_no_reset(emu, ansible, execution):
    devices = [iccid(232), iccid(233)]
    publish(emu, devices[0], "kept", retain=True)
    assert len(emu.received_exactly(devices[0], 1)) == 1
    connects = emu.device_state(devices[0])["connects"]

    run = calls(ansible, "sim_reset.yml", [{"devices": devices}, {"iccid": devices[0]}], emu, check=True)

    assert run.rc == 0, run.describe()
    fleet, single = run.calls
    assert [r["status"] for r in fleet["results"]] == ["would_send", "would_send"]
    assert fleet["summary"] == {"total": 2, "sent": 0, "would_send": 2, "failed": 0}
    assert fleet["changed"] is True and single["changed"] is True
    assert endpoint_count(emu, "PUT Sim/Reset") == 0
    assert emu.device_state(devices[0])["connects"] == connects
    assert len(emu.received_exactly(devices[0], 1)) == 1


def test_a_fleet_reset_counts_each_sim_and_shows_the_unknown_one(emu, ansible, execution):
    devices = [iccid(234), UNKNOWN_ICCID, iccid(235), iccid(236)]
    before = {device: emu.device_state(device)["connects"] for device in devices if device != UNKNOWN_ICCID}
    run = calls(ansible, "sim_reset.yml", [{"devices": devices, "concurrency": 4, "rate_limit": 50}], emu)

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert [(r["iccid"], r["status"]) for r in result["results"]] == [
        (devices[0], "sent"), (UNKNOWN_ICCID, "failed"), (devices[2], "sent"), (devices[3], "sent")]
    assert result["results"][1]["msg"].startswith(f"HTTP 404 Not Found for ICCID {UNKNOWN_ICCID}: ")
    assert result["summary"] == {"total": 4, "sent": 3, "would_send": 0, "failed": 1}
    assert all(emu.device_state(device)["connects"] == count + 1 for device, count in before.items())


def test_a_500_is_never_retried(emu, ansible, execution):
    device = iccid(237)
    emu.update_faults(per_iccid={device: [500]})
    connects = emu.device_state(device)["connects"]
    run = calls(ansible, "sim_reset.yml", [{"iccid": device, "retries": 5}], emu)

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert result["status_code"] == 500
    assert result["msg"].startswith(f"HTTP 500 Internal Server Error for ICCID {device}: ")
    assert endpoint_count(emu, "PUT Sim/Reset") == 1
    assert emu.device_state(device)["connects"] == connects


def test_a_503_is_retried_and_the_reset_happens_once(emu, ansible, execution):
    device = iccid(238)
    emu.update_faults(per_iccid={device: [503]}, retry_after=0)
    connects = emu.device_state(device)["connects"]
    run = calls(ansible, "sim_reset.yml", [{"iccid": device}], emu)

    assert run.rc == 0, run.describe()
    assert run.call(0)["changed"] is True
    assert endpoint_count(emu, "PUT Sim/Reset") == 2
    assert emu.device_state(device)["connects"] == connects + 1
