"""monoz_data_info against the emulator: the uplinks devices published over MQTT, oldest first."""

from __future__ import annotations

import socket

from e2e_support import ORG, iccid
from module_calls import calls


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_uplinks_come_back_oldest_first_and_newest_starts_the_next_window(emu, ansible, execution):
    first, second = iccid(240), iccid(241)
    sent = [emu.uplink(first, "temp=20", topic="status"), emu.uplink(second, "temp=30", topic="status"),
            emu.uplink(first, "temp=21", topic="status")]

    run = calls(ansible, "data_info.yml", [{"start": "1h"}, {"start": "30m", "iccid": first}], emu)

    assert run.rc == 0, run.describe()
    everything, only_first = run.calls
    assert everything["changed"] is False
    assert everything["records"] == [
        {"timestamp": record["Timestamp"], "iccid": record["ICCID"], "topic": record["Topic"],
         "payload": record["Payload"]} for record in sent]
    assert everything["count"] == 3
    assert everything["newest"] == sent[-1]["Timestamp"]
    assert [r["payload"] for r in only_first["records"]] == ["temp=20", "temp=21"]
    assert all(r["topic"] == f"/{ORG}/{first}/status" for r in only_first["records"])

    later = emu.uplink(second, "temp=31", topic="status")
    run = calls(ansible, "data_info.yml", [{"start": everything["newest"]}], emu)

    assert run.rc == 0, run.describe()
    # The window is inclusive: the newest record seen comes again, then what is new.
    assert [r["timestamp"] for r in run.call(0)["records"]] == [sent[-1]["Timestamp"], later["Timestamp"]]


def test_a_device_list_narrows_the_records(emu, ansible, execution):
    devices = [iccid(242), iccid(243), iccid(244)]
    for index, device in enumerate(devices):
        emu.uplink(device, f"n={index}")
    run = calls(ansible, "data_info.yml",
                [{"start": "1h", "devices": [devices[2], {"iccid": devices[0], "name": "from a CSV"}]}], emu)

    assert run.rc == 0, run.describe()
    assert [r["iccid"] for r in run.call(0)["records"]] == [devices[0], devices[2]]


def test_failed_pushes_are_read_with_kind_failed(emu, ansible, execution):
    device = iccid(245)
    emu.set_webhook(f"http://127.0.0.1:{closed_port()}/hook", timeout=1, block_after=1)
    try:
        lost = emu.uplink(device, "pushed-nowhere")
        assert emu.webhook(wait_idle=True)["failed_data"] == 1
        run = calls(ansible, "data_info.yml", [{"start": "1h", "kind": "failed"}, {"start": "1h"}], emu)
    finally:
        emu.set_webhook(None)
        emu.unblock_webhook()

    assert run.rc == 0, run.describe()
    failed, raw = run.calls
    assert [(r["iccid"], r["payload"], r["timestamp"]) for r in failed["records"]] == [
        (device, "pushed-nowhere", lost["Timestamp"])]
    assert [r["payload"] for r in raw["records"]] == ["pushed-nowhere"]


def test_check_mode_reads_the_same_records(emu, ansible, execution):
    emu.uplink(iccid(246), "seen in check mode")
    run = calls(ansible, "data_info.yml", [{"start": "2h"}], emu, check=True)

    assert run.rc == 0, run.describe()
    assert [r["payload"] for r in run.call(0)["records"]] == ["seen in check mode"]


def test_a_bad_window_fails_before_any_request(emu, ansible, execution):
    run = calls(ansible, "data_info.yml", [{"start": "2024-03-12T00:00:00Z", "end": "2024-03-11T00:00:00Z"},
                                           {"start": "yesterday"}], emu)

    assert run.rc != 0, run.describe()
    backwards, vague = run.calls
    assert backwards["msg"].startswith("start (2024-03-12T00:00:00.000Z) is after end")
    assert vague["msg"].startswith("start must be an ISO 8601 time")
    assert emu.stats()["requests"] == 0
