"""monoz_device_info against the emulator: the counters it reads are what the devices really did."""

from __future__ import annotations

import json

from e2e_support import API_KEY, ORG, WRONG_KEY, iccid, shows
from module_calls import UNKNOWN_ICCID, calls, endpoint_count, publish

DEVICE_KEYS = ["name", "iccid", "imei_lock", "activation_date", "expiry_date", "status", "message_count",
               "dl_message_count", "volume", "created_date", "updated_date"]


def test_details_count_the_uplinks_and_downlinks_the_device_exchanged(emu, ansible, execution):
    device, quiet = iccid(200), iccid(201)
    for payload in ("up-1", "up-2", "up-3"):
        emu.uplink(device, payload, topic="status")
    publish(emu, device, "down-1")
    publish(emu, device, "down-2")
    assert len(emu.received_exactly(device, 2)) == 2

    run = calls(ansible, "device_info.yml", [{"iccid": device}, {"devices": [quiet, device]}], emu)

    assert run.rc == 0, run.describe()
    single, fleet = run.calls
    assert single["changed"] is False
    assert list(single["device"]) == DEVICE_KEYS
    assert single["device"]["iccid"] == device
    assert (single["device"]["message_count"], single["device"]["dl_message_count"]) == (3, 2)
    assert single["device"]["status"] == 1
    # The emulator's own record of the device agrees.
    state = emu.device_state(device)
    assert (state["ul_message_count"], state["dl_message_count"]) == (3, 2)
    assert [(r["iccid"], r["status"], r["status_code"]) for r in fleet["results"]] == [
        (quiet, "ok", 200), (device, "ok", 200)]
    assert fleet["results"][0]["device"]["message_count"] == 0
    assert fleet["results"][1]["device"] == single["device"]
    assert fleet["summary"] == {"total": 2, "ok": 2, "failed": 0}
    assert endpoint_count(emu, "GET Device/Sim/Detail") == 3


def test_an_unknown_device_fails_the_task_and_every_result_is_still_returned(emu, ansible, execution):
    devices = [iccid(202), UNKNOWN_ICCID, iccid(203)]
    run = calls(ansible, "device_info.yml", [{"devices": devices, "concurrency": 3}], emu)

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert result["failed"] is True
    assert [(r["iccid"], r["status"]) for r in result["results"]] == [
        (devices[0], "ok"), (UNKNOWN_ICCID, "failed"), (devices[2], "ok")]
    failed = result["results"][1]
    assert failed["status_code"] == 404
    assert failed["msg"].startswith(f"HTTP 404 Not Found for ICCID {UNKNOWN_ICCID}: ")
    assert result["msg"].startswith("1 of 3 devices failed (2 ok); first failure: HTTP 404 Not Found")
    assert result["summary"] == {"total": 3, "ok": 2, "failed": 1}


def test_a_wrong_key_stops_the_fleet_at_the_first_401(emu, ansible, execution):
    devices = [iccid(n) for n in range(204, 214)]
    run = calls(ansible, "device_info.yml", [{"devices": devices, "concurrency": 1, "profile": "wrong"}], emu,
                profiles={"wrong": emu.profile(api_key=WRONG_KEY)}, verbosity=3)

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert endpoint_count(emu, "GET Device/Sim/Detail") == 1
    assert result["results"][0]["status_code"] == 401
    assert all(r["status"] == "failed" and r["msg"].startswith("not attempted: the batch stopped after HTTP 401")
               for r in result["results"][1:])
    assert result["msg"].startswith("the batch stopped at HTTP 401 Unauthorized")
    assert not shows(WRONG_KEY, run.output)
    assert WRONG_KEY not in json.dumps(run.result)


def test_check_mode_reads_the_same_details(emu, ansible, execution):
    device = iccid(214)
    emu.uplink(device, "hello")
    run = calls(ansible, "device_info.yml", [{"iccid": device}], emu, check=True)

    assert run.rc == 0, run.describe()
    assert run.call(0)["changed"] is False
    assert run.call(0)["device"]["message_count"] == 1


def test_bad_device_fails_before_any_request(emu, ansible, execution):
    devices = [iccid(215), {"iccid": iccid(216), "name": "from a CSV"}, "8988-bad"]
    run = calls(ansible, "device_info.yml", [{"devices": devices}], emu)

    assert run.rc != 0, run.describe()
    assert run.call(0)["msg"].startswith("devices[2] (ICCID 8988-bad): iccid must contain digits only")
    assert emu.stats()["requests"] == 0


def test_every_module_takes_its_credentials_from_the_action_group(emu, ansible, execution):
    device = iccid(217)
    emu.uplink(device, "for data_info")
    run = ansible.run("module_defaults_all.yml", {"e2e_org_id": ORG, "e2e_api_key": API_KEY,
                                                  "e2e_api_url": emu.process.api_url, "e2e_iccid": device})

    assert run.rc == 0, run.describe()
    assert run.result["device_info"]["device"]["iccid"] == device
    assert run.result["sim"]["changed"] is False and run.result["sim"]["enabled"] is True
    assert run.result["sim_reset"]["status_code"] == 200
    assert [r["payload"] for r in run.result["data_info"]["records"]] == ["for data_info"]
    assert not shows(API_KEY, run.output)
