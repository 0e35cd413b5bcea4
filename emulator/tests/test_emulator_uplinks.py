"""Device uplinks: simulated devices publish over MQTT, the emulator stores them for RawData / FailedData.

On the embedded broker and on mosquitto. Waits are the emulator's blocking
calls (the uplink endpoint answers once the record is stored) or the webhook
receiver's condition variable; never sleeps.
"""

from __future__ import annotations

import calendar
import json
import queue
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from emulator_test_support import BROKERS, WIDE_WINDOW, WebhookReceiver, api, assert_error, assert_ok
from monoz_emulator.testing import EmulatorError, EmulatorProcess, generated_iccid

I0, I1, I2, I3 = (generated_iccid(i) for i in range(4))
STAMP = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{7})Z")


@pytest.fixture(scope="module", params=BROKERS)
def emu(request: pytest.FixtureRequest) -> Any:
    with EmulatorProcess(devices=10, mqtt_broker=request.param) as proc:
        yield proc
        assert "Traceback" not in proc.stderr_text(), proc.stderr_text()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    if "emu" in request.fixturenames:
        request.getfixturevalue("emu").reset()


def ticks(stamp: str) -> int:
    match = STAMP.fullmatch(stamp)
    assert match, stamp
    parts = [int(g) for g in match.groups()]
    return calendar.timegm((*parts[:6], 0, 0, 0)) * 10_000_000 + parts[6]


def stamp(value: int) -> str:
    seconds, fraction = divmod(value, 10_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{fraction:07d}Z"


def raw_data(emu: EmulatorProcess, start: str, end: str, kind: str = "RawData", org: str | None = None,
             key: str | None = None) -> list[dict[str, Any]]:
    return assert_ok(api(emu, "POST", kind, {"StartTime": start, "EndTime": end}, org=org, key=key), "FetchSuccess")


# ------------------------------------------------------------------ uplinks

def test_uplink_record_and_counter(emu: EmulatorProcess) -> None:
    plain = emu.uplink(I0, '{"temp": 21.5}')
    assert set(plain) == {"Timestamp", "Payload", "ICCID", "Topic"}
    assert STAMP.fullmatch(plain["Timestamp"]), plain
    assert (plain["Payload"], plain["ICCID"], plain["Topic"]) == ('{"temp": 21.5}', I0, f"/DEMO/{I0}")
    status = emu.uplink(I0, "ok", topic="status", qos=1)
    assert status["Topic"] == f"/DEMO/{I0}/status" and ticks(status["Timestamp"]) > ticks(plain["Timestamp"])
    assert emu.device_state(I0)["ul_message_count"] == 2
    assert emu.device_state(I1)["ul_message_count"] == 0
    assert raw_data(emu, WIDE_WINDOW["StartTime"], WIDE_WINDOW["EndTime"]) == [status, plain]  # newest first
    assert emu.stats()["uplinks"] == 2
    # Monoz stores uplinks; the devices' downlink inbox stays empty.
    assert emu.sync() and emu.received(I0) == []


def test_uplink_travels_over_mqtt(emu: EmulatorProcess) -> None:
    got: queue.Queue[tuple[str, bytes, int]] = queue.Queue()
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, m: got.put((m.topic, m.payload, m.qos))
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(emu.mqtt_host or "127.0.0.1", emu.mqtt_port or 0)
    client.loop_start()
    try:
        client.subscribe(f"/DEMO/{I1}/+", qos=1)
        assert subscribed.wait(10)
        emu.uplink(I1, "over-mqtt", topic="telemetry", qos=1)
        assert got.get(timeout=10) == (f"/DEMO/{I1}/telemetry", b"over-mqtt", 1)
    finally:
        client.disconnect()
        client.loop_stop()


def test_uplink_from_any_mqtt_client_is_stored_unknown_device_dropped(emu: EmulatorProcess) -> None:
    """The broker takes uplinks for a wrong ORG/ICCID too; Monoz drops them silently."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(emu.mqtt_host or "127.0.0.1", emu.mqtt_port or 0)
    client.loop_start()
    try:
        client.publish("/DEMO/4040404040/x", b"ghost", qos=1).wait_for_publish(10)
        client.publish(f"/DEMO/{I3}/x", b"real", qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    # One publisher's messages arrive in order: once "real" is stored, "ghost" was handled.
    deadline = time.monotonic() + 20
    while not raw_data(emu, WIDE_WINDOW["StartTime"], WIDE_WINDOW["EndTime"]):
        assert time.monotonic() < deadline, "the uplink was never stored"
        time.sleep(0.02)  # polling a condition with a deadline
    [record] = raw_data(emu, WIDE_WINDOW["StartTime"], WIDE_WINDOW["EndTime"])
    assert (record["ICCID"], record["Payload"]) == (I3, "real")
    assert emu.stats()["uplinks_ignored"] == 1


def test_burst_of_uplinks(emu: EmulatorProcess) -> None:
    records = emu.uplinks("burst", iccids=[I0, I1, I2], topic="b", qos=1)
    assert sorted(r["ICCID"] for r in records) == [I0, I1, I2]
    assert all(r["Payload"] == "burst" and r["Topic"] == f"/DEMO/{r['ICCID']}/b" for r in records)
    everyone = emu.uplinks("all")
    assert len(everyone) == 11  # 10 generated devices and 12345678


BAD_UPLINKS = [
    ({}, "payload must be a non-empty string"),
    ({"payload": ""}, "payload must be a non-empty string"),
    ({"payload": 5}, "payload must be a non-empty string"),
    ({"payload": "x" * 6145}, "over 6144 bytes"),
    ({"payload": "x", "topic": "a/b"}, "one topic level"),
    ({"payload": "x", "topic": "+"}, "one topic level"),
    ({"payload": "x", "topic": ""}, "one topic level"),
    ({"payload": "x", "topic": "sub"}, "downlink level"),
    ({"payload": "x", "qos": 2}, "qos must be 0 or 1"),
    ({"payload": "x", "qos": True}, "qos must be 0 or 1"),
    ({"payload": "x", "retain": True}, "unknown field(s): retain"),
]


@pytest.mark.parametrize("body,fragment", BAD_UPLINKS, ids=[b[1] for b in BAD_UPLINKS])
def test_uplink_control_validation(emu: EmulatorProcess, body: dict[str, Any], fragment: str) -> None:
    with pytest.raises(EmulatorError, match="HTTP 400") as info:
        emu._call("POST", f"/devices/DEMO/{I0}/uplink", body=body)
    assert fragment in str(info.value)
    assert emu.stats()["uplinks"] == 0


def test_uplink_limits_and_refusals(emu: EmulatorProcess) -> None:
    assert emu.uplink(I0, "é" * 3072)["Payload"] == "é" * 3072  # 6144 bytes
    with pytest.raises(EmulatorError, match="HTTP 404"):
        emu.uplink("4040404040", "x")
    assert_ok(api(emu, "PUT", "Sim/Enable", {"ICCID": I1, "Enable": False}), "UpdateSuccess")
    with pytest.raises(EmulatorError, match="HTTP 409.*offline"):
        emu.uplink(I1, "x")
    with pytest.raises(EmulatorError, match="HTTP 409"):
        emu.uplinks("x", iccids=[I0, I1])
    assert emu.device_state(I1)["ul_message_count"] == 0


# ---------------------------------------------------------------- windows

def test_rawdata_window_is_inclusive(emu: EmulatorProcess) -> None:
    r1, r2, r3 = (emu.uplink(I0, f"m{i}") for i in range(3))
    t1, t2, t3 = (ticks(r["Timestamp"]) for r in (r1, r2, r3))
    assert t1 < t2 < t3  # every record gets its own 100 ns tick
    assert raw_data(emu, r1["Timestamp"], r3["Timestamp"]) == [r3, r2, r1]
    assert raw_data(emu, r2["Timestamp"], r2["Timestamp"]) == [r2]
    assert raw_data(emu, stamp(t1 + 1), stamp(t3 - 1)) == [r2]
    assert raw_data(emu, stamp(t3 + 1), stamp(t3 + 10**7)) == []
    assert raw_data(emu, "2000-01-01T00:00:00Z", stamp(t1 - 1)) == []
    assert raw_data(emu, r1["Timestamp"], r3["Timestamp"], kind="FailedData") == []


def test_rawdata_window_offsets_and_precision(emu: EmulatorProcess) -> None:
    record = emu.uplink(I0, "when")
    t = ticks(record["Timestamp"])
    plus_two = datetime.fromtimestamp(t // 10**7, timezone(timedelta(hours=2))).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{t % 10**7:07d}"
    assert raw_data(emu, f"{plus_two}.{fraction}+02:00", f"{plus_two}.{fraction}+0200") == [record]
    # Up to 9 digits are read, down to the 100 ns the timestamps have (as .NET's DateTime ticks).
    assert raw_data(emu, f"{plus_two}.{fraction}99+02:00", stamp(t + 10**7)) == [record]
    assert raw_data(emu, stamp(t + 1), stamp(t + 10**7)) == []
    assert raw_data(emu, record["Timestamp"][:-1], record["Timestamp"][:-1]) == [record]  # no zone: UTC
    assert raw_data(emu, record["Timestamp"][:19] + "Z", record["Timestamp"][:23] + "Z") == (
        [record] if fraction[3:] == "0000" else [])  # milliseconds cut off the rest


BAD_WINDOWS = [
    ({"StartTime": "2024-03-11T07:26:54Z"}, "Missing required field(s): EndTime"),
    ({"EndTime": "2024-03-11T07:26:54Z"}, "Missing required field(s): StartTime"),
    ({"StartTime": "2024-03-11", "EndTime": "2024-03-12T00:00:00Z"}, "StartTime '2024-03-11' is not an ISO 8601"),
    ({"StartTime": "yesterday", "EndTime": "2024-03-12T00:00:00Z"}, "not an ISO 8601"),
    ({"StartTime": 1710141414, "EndTime": "2024-03-12T00:00:00Z"}, "StartTime must be an ISO 8601 string"),
    ({"StartTime": "2024-02-30T00:00:00Z", "EndTime": "2024-03-12T00:00:00Z"}, "not a valid date"),
    ({"StartTime": "2024-03-11T25:00:00Z", "EndTime": "2024-03-12T00:00:00Z"}, "not a valid date"),
    ({"StartTime": "2024-03-11T00:00:00+25:00", "EndTime": "2024-03-12T00:00:00Z"}, "invalid UTC offset"),
    ({"StartTime": "2024-03-12T00:00:00Z", "EndTime": "2024-03-11T00:00:00Z"}, "StartTime is after EndTime"),
    ({"StartTime": "2024-03-11T00:00:00Z", "EndTime": "2024-03-12T00:00:00Z", "ICCID": I0}, "Unknown field(s): ICCID"),
]


@pytest.mark.parametrize("kind", ["RawData", "FailedData"])
@pytest.mark.parametrize("body,fragment", BAD_WINDOWS, ids=[b[1][:30] for b in BAD_WINDOWS])
def test_data_window_400(emu: EmulatorProcess, kind: str, body: dict[str, Any], fragment: str) -> None:
    assert_error(api(emu, "POST", kind, body), 400, fragment)


def test_rawdata_is_per_org() -> None:
    args = ["--org", "ACME", "--api-key", "acme-key"]
    with EmulatorProcess(devices=2, extra_args=args) as proc:
        demo = proc.uplink(I0, "demo-data")
        acme = proc.uplink(I0, "acme-data", org="ACME")
        assert raw_data(proc, WIDE_WINDOW["StartTime"], WIDE_WINDOW["EndTime"]) == [demo]
        assert raw_data(proc, WIDE_WINDOW["StartTime"], WIDE_WINDOW["EndTime"], org="ACME", key="acme-key") == [acme]
        assert_error(api(proc, "POST", "RawData", WIDE_WINDOW, org="ACME"), 401)  # DEMO's key


# ------------------------------------------------------------ periodic

def test_periodic_uplinks_skip_disabled_devices() -> None:
    with WebhookReceiver() as hook, EmulatorProcess(
            devices=2, extra_args=["--uplink-interval", "0.2", "--webhook-url", hook.url]) as proc:
        devices = (I0, I1, "12345678")
        hook.wait_packets(2 * len(devices))
        assert_ok(api(proc, "PUT", "Sim/Enable", {"ICCID": I1, "Enable": False}), "UpdateSuccess")
        seq_at_disable = max(json.loads(p["Payload"])["seq"] for p in hook.packets())
        # Round seq_at_disable + 1 may have started before the disable; rounds from + 2 on did not.
        later = hook.wait_for(lambda packets: sum(json.loads(p["Payload"])["seq"] >= seq_at_disable + 3
                                                  for p in packets) >= 2)
        assert {p["ICCID"] for p in later if json.loads(p["Payload"])["seq"] >= seq_at_disable + 2} == {I0, "12345678"}
        first = [p for p in hook.packets() if json.loads(p["Payload"])["seq"] == 1]
        assert sorted(p["ICCID"] for p in first) == sorted(devices)
        for device in (I0, "12345678"):
            seqs = [json.loads(p["Payload"])["seq"] for p in hook.packets() if p["ICCID"] == device]
            assert seqs == list(range(1, len(seqs) + 1))
        stored = raw_data(proc, WIDE_WINDOW["StartTime"], WIDE_WINDOW["EndTime"])
        assert {r["Topic"] for r in stored} == {f"/DEMO/{d}" for d in devices}
        assert proc.device_state(I0)["ul_message_count"] >= seq_at_disable + 3


def test_no_mqtt_refuses_uplinks() -> None:
    with EmulatorProcess(devices=1, extra_args=["--no-mqtt"]) as proc:
        with pytest.raises(EmulatorError, match="HTTP 409"):
            proc.uplink(I0, "x")
        assert raw_data(proc, WIDE_WINDOW["StartTime"], WIDE_WINDOW["EndTime"]) == []
        assert_ok(api(proc, "PUT", "Sim/Enable", {"ICCID": I0, "Enable": False}), "UpdateSuccess")
        assert_ok(api(proc, "PUT", "Sim/Reset", {"ICCID": I0}), "UpdateSuccess")
        assert proc.device_state(I0)["enabled"] is False
