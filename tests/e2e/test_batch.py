"""Batch mode (`devices`): many devices in one task, each receiving exactly its own messages.

Tests whose subject is the batch engine's scheduling (fan-out, per-device
order) run on the default controller path only: the engine is the same
module_utils code on both paths, and a second run would double their cost.
Everything that crosses the path boundary (failure reporting, 401, input
validation, check mode) runs on both.
"""

from __future__ import annotations

import json
import random

from e2e_support import ORG, WRONG_KEY, iccid, shows

SUMMARY_KEYS = ("total", "sent", "failed", "skipped")


def summary_of(result: dict) -> dict:
    return {key: result["summary"][key] for key in SUMMARY_KEYS}


def test_batch_of_200_devices_each_receives_exactly_its_own_message(emu, ansible):
    devices = [iccid(i) for i in range(200)]
    random.Random(200).shuffle(devices)  # so input order is not ICCID order
    elements = [{"iccid": device, "payload": {"device": device, "seq": n}} for n, device in enumerate(devices)]
    run = ansible.downlink([{"devices": elements, "concurrency": 16}], {"default": emu.profile()})

    assert run.rc == 0, run.describe()
    result = run.call(0)
    assert result["changed"] is True
    assert summary_of(result) == {"total": 200, "sent": 200, "failed": 0, "skipped": 0}
    # Results come back in input order.
    assert [r["iccid"] for r in result["results"]] == devices
    assert {(r["status"], r["status_code"], r["attempts"]) for r in result["results"]} == {("sent", 200, 1)}
    assert emu.stats()["requests"] == 200
    assert emu.received_counts(wait_total=200)["total"] >= 200
    emu.barrier()
    received = emu.all_received()
    assert set(received) == set(devices)
    for n, device in enumerate(devices):
        expected = {"topic": f"/{ORG}/{device}/sub", "payload": json.dumps({"device": device, "seq": n},
                    separators=(",", ":")), "qos": 0, "retain": False}
        assert received[device] == [expected], device


def test_batch_messages_to_one_device_arrive_in_input_order(emu, ansible):
    devices = [iccid(i) for i in range(30, 50)]
    # Every device gets a config, then a reboot; all configs are listed first,
    # so a batch that sent them in parallel would race them.
    configs = [{"iccid": d, "payload": {"apn": f"apn-{d[-4:]}"}, "topic": "/config", "qos": 1} for d in devices]
    reboots = [{"iccid": d, "payload": "reboot", "format": "text", "topic": "/cmd", "qos": 1} for d in devices]
    # Each device's first request gets a 503: the config is retried after a
    # back-off, and a reboot sent in parallel would overtake it.
    emu.set_faults(per_iccid={device: [503] for device in devices})
    run = ansible.downlink([{"devices": configs + reboots, "concurrency": 16}], {"default": emu.profile()})

    assert run.rc == 0, run.describe()
    result = run.call(0)
    assert summary_of(result) == {"total": 40, "sent": 40, "failed": 0, "skipped": 0}
    assert [r["iccid"] for r in result["results"]] == devices + devices
    assert [r["attempts"] for r in result["results"]] == [2] * 20 + [1] * 20
    assert emu.stats()["by_status"] == {"503": 20, "200": 40}
    for device in devices:
        logged = [m["topic"] for m in emu.messages(device)]
        assert logged == ["/config", "/cmd"], device
    emu.received_counts(wait_total=40)
    emu.barrier()
    received = emu.all_received()
    for device in devices:
        assert [(m["topic"], m["payload"]) for m in received[device]] == [
            (f"/{ORG}/{device}/sub/config", json.dumps({"apn": f"apn-{device[-4:]}"}, separators=(",", ":"))),
            (f"/{ORG}/{device}/sub/cmd", "reboot"),
        ], device


def test_batch_with_one_failing_device_fails_the_task_and_delivers_the_rest(emu, ansible, execution):
    devices = [iccid(i) for i in range(60, 90)]
    failing = devices[7]
    emu.set_faults(per_iccid={failing: [500]})
    run = ansible.downlink(
        [{"devices": devices, "payload": "fw-update", "concurrency": 8}], {"default": emu.profile()}
    )

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert result["failed"] is True
    assert summary_of(result) == {"total": 30, "sent": 29, "failed": 1, "skipped": 0}
    assert [r["iccid"] for r in result["results"]] == devices
    bad = result["results"][7]
    assert bad["status"] == "failed"
    assert bad["status_code"] == 500
    assert bad["attempts"] == 1
    assert bad["msg"].startswith(f"HTTP 500 Internal Server Error for ICCID {failing}: "), bad["msg"]
    assert failing in result["msg"]
    assert all(r["status"] == "sent" for i, r in enumerate(result["results"]) if i != 7)
    assert emu.stats()["requests"] == 30
    emu.received_counts(wait_total=29)
    emu.barrier()
    received = emu.all_received()
    assert failing not in received
    assert {d: [m["payload"] for m in received.get(d, [])] for d in devices if d != failing} == {
        d: ["fw-update"] for d in devices if d != failing
    }


def test_batch_stops_early_on_401_and_reports_unattempted_devices(emu, ansible, execution):
    devices = [iccid(i) for i in range(200)]
    concurrency = 4
    run = ansible.downlink(
        [{"devices": devices, "payload": "never", "concurrency": concurrency, "profile": "wrong"}],
        {"default": emu.profile(), "wrong": emu.profile(api_key=WRONG_KEY)},
    )

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert result["failed"] is True
    assert "401" in result["msg"]
    requests_seen = emu.stats()["requests"]
    # Each worker stops after its first 401: at most one request per worker.
    assert 1 <= requests_seen <= concurrency
    assert summary_of(result) == {"total": 200, "sent": 0, "failed": 200, "skipped": 0}
    results = result["results"]
    assert [r["iccid"] for r in results] == devices
    attempted = [r for r in results if r["status_code"] == 401]
    not_attempted = [r for r in results if r["status_code"] is None]
    assert len(attempted) == requests_seen
    assert len(attempted) + len(not_attempted) == 200
    for r in not_attempted:
        assert r["status"] == "failed" and r["attempts"] == 0
        assert "not attempted" in r["msg"], r
    assert not shows(WRONG_KEY, run.output)
    emu.barrier()
    assert emu.all_received() == {}


def test_batch_bad_element_fails_naming_its_index_and_sends_nothing(emu, ansible, execution):
    devices: list = [iccid(i) for i in range(100)]
    devices[57] = {"iccid": iccid(57), "topic": "no-leading-slash"}
    run = ansible.downlink([{"devices": devices, "payload": "x"}], {"default": emu.profile()})

    assert run.rc != 0, run.describe()
    msg = run.call(0)["msg"]
    assert "devices[57]" in msg and iccid(57) in msg and "topic" in msg, msg
    assert emu.stats()["requests"] == 0


def test_batch_check_mode_reports_would_send_for_every_device(emu, ansible, execution):
    devices = [iccid(i) for i in range(100, 110)]
    run = ansible.downlink([{"devices": devices, "payload": {"apn": "iot"}}], {"default": emu.profile()}, check=True)

    assert run.rc == 0, run.describe()
    result = run.call(0)
    assert result["changed"] is True
    assert [(r["iccid"], r["status"]) for r in result["results"]] == [(d, "would_send") for d in devices]
    assert result["summary"]["total"] == 10
    assert result["summary"]["sent"] == 0
    assert result["summary"]["would_send"] == 10
    assert emu.stats()["requests"] == 0
    assert emu.messages() == []
    emu.barrier()
    assert emu.all_received() == {}


def test_batch_above_the_echo_limit_with_until_resends_to_every_device(emu, ansible):
    # Above 1,000 devices the controller path drops the list from the echoed
    # task args, except for until/retries: the retry must still get the list.
    devices = [iccid(i) for i in range(1100)]
    # The session emulator registers fewer; reset() keeps added devices and adding is idempotent.
    assert emu.add_devices(devices)["devices"] >= 1100
    run = ansible.run(
        "batch_until.yml",
        {"e2e_devices": devices, "e2e_profiles": {"default": emu.profile()}},
        env={"MONOZ_DOWNLINK_EXECUTION": "controller"},  # the path that drops the list
    )

    assert run.rc == 0, run.describe()
    assert "RETRYING" in run.output, run.describe()
    result = run.result
    assert result["attempts"] == 2
    assert result["failed"] is False
    assert summary_of(result) == {"total": 1100, "sent": 1100, "failed": 0, "skipped": 0}
    assert [r["iccid"] for r in result["results"]] == devices
    assert {(r["status"], r["attempts"]) for r in result["results"]} == {("sent", 1)}
    assert emu.stats()["requests"] == 2200
    assert emu.stats()["by_status"] == {"200": 2200}
    assert emu.received_counts(wait_total=2200)["total"] >= 2200
    emu.barrier()
    received = emu.all_received()
    assert {d: [m["payload"] for m in messages] for d, messages in received.items()} == {
        d: ["until-retry", "until-retry"] for d in devices
    }
