"""The SIM endpoints: device details, SIM enable/disable, SIM reset, with their effect on the devices.

Validation and status codes over real HTTP; SIM state asserted on what the
simulated device receives over real MQTT, on the embedded broker and on
mosquitto. Synchronisation through the emulator's blocking waits
(`received(wait_for=)`, `sync()`), never sleeps.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests

from emulator_test_support import BROKERS, api, assert_error, assert_ok, publish
from monoz_emulator.testing import EmulatorProcess, generated_iccid

I0, I1, I2 = generated_iccid(0), generated_iccid(1), generated_iccid(2)
UNKNOWN = "8988280666099999999"
DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@pytest.fixture(scope="module", params=BROKERS)
def emu(request: pytest.FixtureRequest) -> Any:
    with EmulatorProcess(devices=10, mqtt_broker=request.param) as proc:
        yield proc
        assert "Traceback" not in proc.stderr_text(), proc.stderr_text()


@pytest.fixture(autouse=True)
def _clean(emu: EmulatorProcess) -> None:
    emu.reset()


def enable(emu: EmulatorProcess, iccid: str, on: bool) -> None:
    assert_ok(api(emu, "PUT", "Sim/Enable", {"ICCID": iccid, "Enable": on}), "UpdateSuccess")


def payloads(messages: list[dict[str, Any]]) -> list[tuple[str, bool]]:
    return [(m["payload"], m["retain"]) for m in messages]


# ------------------------------------------------------------------ details

def test_device_detail_shape_and_counters(emu: EmulatorProcess) -> None:
    data = assert_ok(api(emu, "GET", f"Device/Sim/Detail/{I0}"), "FetchSuccess")
    assert set(data) == {"Name", "ICCID", "IMEILock", "ActivationDate", "ExpiryDate", "Status", "MessageCount",
                         "DLMessageCount", "Volume", "CreatedDate", "UpdatedDate"}
    assert data["ICCID"] == I0 and data["Status"] == 1 and data["IMEILock"] is False
    assert data["MessageCount"] == 0 and data["DLMessageCount"] == 0
    assert isinstance(data["Volume"], int) and isinstance(data["Name"], str) and data["Name"]
    assert all(DATE.fullmatch(data[k]) for k in ("ActivationDate", "ExpiryDate", "CreatedDate", "UpdatedDate"))
    assert data["ExpiryDate"] > data["ActivationDate"]

    publish(emu, I0, "one", qos=1)
    publish(emu, I0, "two")
    emu.uplink(I0, "up")
    data = assert_ok(api(emu, "GET", f"Device/Sim/Detail/{I0}"), "FetchSuccess")
    assert (data["MessageCount"], data["DLMessageCount"]) == (1, 2)
    assert emu.device_state(I0) == {"org": "DEMO", "iccid": I0, "enabled": True, "connects": 1,
                                    "ul_message_count": 1, "dl_message_count": 2}
    # Rejected requests count nothing.
    api(emu, "POST", "Publish/Message", {"ICCID": I0, "Topic": "", "Message": "", "QoS": 0, "Format": 1})
    assert emu.device_state(I0)["dl_message_count"] == 2


def test_counters_are_per_device_and_reset_clears_them(emu: EmulatorProcess) -> None:
    publish(emu, I1, "x")
    assert emu.device_state(I1)["dl_message_count"] == 1
    assert emu.device_state(I2)["dl_message_count"] == 0
    emu.reset()
    assert emu.device_state(I1)["dl_message_count"] == 0


# ------------------------------------------------------------- SIM enable

def test_enable_get_and_put_roundtrip(emu: EmulatorProcess) -> None:
    assert assert_ok(api(emu, "GET", f"Sim/Enable/{I0}"), "FetchSuccess") == {"Enabled": True}
    enable(emu, I0, False)
    assert assert_ok(api(emu, "GET", f"Sim/Enable/{I0}"), "FetchSuccess") == {"Enabled": False}
    assert assert_ok(api(emu, "GET", f"Device/Sim/Detail/{I0}"), "FetchSuccess")["Status"] == 0
    assert emu.device_state(I0)["enabled"] is False
    enable(emu, I0, False)  # already disabled: still 200
    enable(emu, I0, True)
    assert assert_ok(api(emu, "GET", f"Sim/Enable/{I0}"), "FetchSuccess") == {"Enabled": True}


def test_disabled_sim_device_receives_nothing(emu: EmulatorProcess) -> None:
    enable(emu, I0, False)
    publish(emu, I0, "while-off", qos=1)  # still accepted
    publish(emu, I1, "neighbour", qos=1)
    assert emu.sync()
    assert emu.received(I0) == []
    assert payloads(emu.received(I1)) == [("neighbour", False)]
    assert emu.device_state(I0)["dl_message_count"] == 1  # Monoz published it; the device was not there


def test_enabling_reconnects_and_delivers_retained(emu: EmulatorProcess) -> None:
    enable(emu, I0, False)
    publish(emu, I0, "cfg-v2", topic="/cfg", qos=1, retain=True)
    publish(emu, I0, "live-only", qos=1)
    assert emu.sync() and emu.received(I0) == []
    enable(emu, I0, True)
    # The 200 came once the device had subscribed again and got the retained message.
    assert emu.received(I0) == [{"topic": f"/DEMO/{I0}/sub/cfg", "payload": "cfg-v2", "qos": 1, "retain": True}]
    assert emu.device_state(I0)["connects"] == 2
    publish(emu, I0, "back", qos=0)
    assert payloads(emu.received(I0, wait_for=2)) == [("cfg-v2", True), ("back", False)]


def test_reset_restores_enabled_sims(emu: EmulatorProcess) -> None:
    enable(emu, I2, False)
    emu.reset()
    assert emu.device_state(I2)["enabled"] is True
    publish(emu, I2, "after-reset", qos=1)
    assert payloads(emu.received(I2, wait_for=1)) == [("after-reset", False)]


# --------------------------------------------------------------- SIM reset

def test_reset_redelivers_retained_message(emu: EmulatorProcess) -> None:
    publish(emu, I0, "config-7", topic="/config", qos=1, retain=True)
    assert payloads(emu.received(I0, wait_for=1)) == [("config-7", False)]
    assert_ok(api(emu, "PUT", "Sim/Reset", {"ICCID": I0}), "UpdateSuccess")
    got = emu.received(I0)
    assert got[1] == {"topic": f"/DEMO/{I0}/sub/config", "payload": "config-7", "qos": 1, "retain": True}
    assert len(got) == 2
    assert emu.device_state(I0)["connects"] == 2
    # Still subscribed after the reconnect, exactly once.
    publish(emu, I0, "live", qos=1)
    emu.received(I0, wait_for=3)
    assert emu.sync()
    assert payloads(emu.received(I0)) == [("config-7", False), ("config-7", True), ("live", False)]


def test_reset_without_retained_and_qos0_retained(emu: EmulatorProcess) -> None:
    assert_ok(api(emu, "PUT", "Sim/Reset", {"ICCID": I1}), "UpdateSuccess")
    assert emu.received(I1) == [] and emu.device_state(I1)["connects"] == 2
    publish(emu, I1, "q0", qos=0, retain=True)
    emu.received(I1, wait_for=1)
    assert_ok(api(emu, "PUT", "Sim/Reset", {"ICCID": I1}), "UpdateSuccess")
    assert emu.received(I1)[-1] == {"topic": f"/DEMO/{I1}/sub", "payload": "q0", "qos": 0, "retain": True}


def test_reset_of_disabled_sim_keeps_device_offline(emu: EmulatorProcess) -> None:
    publish(emu, I2, "kept", qos=1, retain=True)
    emu.received(I2, wait_for=1)
    enable(emu, I2, False)
    assert_ok(api(emu, "PUT", "Sim/Reset", {"ICCID": I2}), "UpdateSuccess")
    assert emu.device_state(I2)["connects"] == 1
    assert emu.sync() and len(emu.received(I2)) == 1


def test_a_burst_of_resets_reconnects_every_device_once(emu: EmulatorProcess) -> None:
    # Resets answered at once and reconnected in batches: each device still
    # reconnects once per reset and gets its own retained message once more.
    devices = [generated_iccid(index) for index in range(10)]
    for device in devices:
        publish(emu, device, f"cfg-{device[-2:]}", qos=1, retain=True)
    for device in devices:
        emu.received(device, wait_for=1)
    # Device 3 twice: two reconnections, two more copies.
    targets = [*devices[:8], devices[3]]
    batches = emu.stats()["reconnect_batches"]
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        answers = list(pool.map(lambda device: api(emu, "PUT", "Sim/Reset", {"ICCID": device}), targets))
    for resp in answers:
        assert_ok(resp, "UpdateSuccess")
    for device in devices:
        resets = targets.count(device)
        assert emu.device_state(device)["connects"] == 1 + resets, device
        assert payloads(emu.received(device)) == [(f"cfg-{device[-2:]}", False)] + [(f"cfg-{device[-2:]}", True)] * resets
    stats = emu.stats()
    assert stats["reconnecting"] == 0
    assert 2 <= stats["reconnect_batches"] - batches <= len(targets)


def test_a_device_is_sent_to_and_disabled_only_after_its_reconnection(emu: EmulatorProcess) -> None:
    # The reset is answered before the device has reconnected; what follows it
    # (a downlink, disabling the SIM) still comes after the reconnection.
    publish(emu, I0, "kept", qos=1, retain=True)
    emu.received(I0, wait_for=1)
    assert_ok(api(emu, "PUT", "Sim/Reset", {"ICCID": I0}), "UpdateSuccess")
    publish(emu, I0, "live", qos=1)
    assert payloads(emu.received(I0, wait_for=3)) == [("kept", False), ("kept", True), ("live", False)]
    assert_ok(api(emu, "PUT", "Sim/Reset", {"ICCID": I0}), "UpdateSuccess")
    enable(emu, I0, False)
    publish(emu, I0, "while-disabled", qos=1)
    assert emu.sync()
    assert payloads(emu.received(I0))[3:] == [("kept", True)]
    assert emu.device_state(I0) == {**emu.device_state(I0), "enabled": False, "connects": 3}


# ------------------------------------------------------------ validation

@pytest.mark.parametrize("method,path,body", [
    ("GET", f"Device/Sim/Detail/{I0}", None),
    ("GET", f"Sim/Enable/{I0}", None),
    ("PUT", "Sim/Enable", {"ICCID": I0, "Enable": False}),
    ("PUT", "Sim/Reset", {"ICCID": I0}),
    ("POST", "RawData", {"StartTime": "2024-01-01T00:00:00Z", "EndTime": "2024-01-02T00:00:00Z"}),
    ("POST", "FailedData", {"StartTime": "2024-01-01T00:00:00Z", "EndTime": "2024-01-02T00:00:00Z"}),
], ids=["detail", "enable-get", "enable-put", "reset", "raw", "failed"])
def test_401_wrong_key_missing_key_unknown_org(emu: EmulatorProcess, method: str, path: str, body: Any) -> None:
    assert_error(api(emu, method, path, body, key="wrong"), 401)
    assert_error(api(emu, method, path, body, key=""), 401)
    assert_error(api(emu, method, path, body, org="NOPE"), 401)
    assert_error(api(emu, method, path, body, key="wrong", raw=b"garbage" if body else None), 401)
    assert emu.device_state(I0)["enabled"] is True and emu.device_state(I0)["connects"] == 1
    assert emu.stats()["by_endpoint"][f"{method} {path.split('/' + I0)[0]}"] == {"401": 4}


@pytest.mark.parametrize("method,path", [("GET", "Device/Sim/Detail/{}"), ("GET", "Sim/Enable/{}")])
def test_path_iccid_404_and_400(emu: EmulatorProcess, method: str, path: str) -> None:
    assert_error(api(emu, method, path.format(UNKNOWN)), 404, UNKNOWN)
    assert_error(api(emu, method, path.format("89ab")), 400, "ICCID must be 1 to 22 digits")
    assert_error(api(emu, method, path.format("1" * 23)), 400, "ICCID must be 1 to 22 digits")


BAD_ENABLE = [
    ({"ICCID": I0}, "Missing required field(s): Enable"),
    ({"Enable": True}, "Missing required field(s): ICCID"),
    ({"ICCID": I0, "Enable": "true"}, "Enable must be a boolean"),
    ({"ICCID": I0, "Enable": 1}, "Enable must be a boolean"),
    ({"ICCID": I0, "Enable": None}, "Enable must be a boolean"),
    ({"ICCID": int(I0), "Enable": True}, "ICCID must be a string"),
    ({"ICCID": "12-34", "Enable": True}, "ICCID must be 1 to 22 digits"),
    ({"ICCID": I0, "Enable": True, "State": 1}, "Unknown field(s): State"),
    ([I0], "JSON object"),
]


@pytest.mark.parametrize("body,fragment", BAD_ENABLE, ids=[b[1] for b in BAD_ENABLE])
def test_enable_put_400(emu: EmulatorProcess, body: Any, fragment: str) -> None:
    assert_error(api(emu, "PUT", "Sim/Enable", body), 400, fragment)
    assert emu.device_state(I0)["enabled"] is True


BAD_RESET = [
    ({}, "Missing required field(s): ICCID"),
    ({"ICCID": 5}, "ICCID must be a string"),
    ({"ICCID": ""}, "ICCID must be 1 to 22 digits"),
    ({"ICCID": I0, "Enable": True}, "Unknown field(s): Enable"),
    ("reset", "JSON object"),
]


@pytest.mark.parametrize("body,fragment", BAD_RESET, ids=[b[1] for b in BAD_RESET])
def test_reset_400(emu: EmulatorProcess, body: Any, fragment: str) -> None:
    assert_error(api(emu, "PUT", "Sim/Reset", body), 400, fragment)
    assert emu.device_state(I0)["connects"] == 1


@pytest.mark.parametrize("raw,fragment", [(b"", "empty"), (b"{", "not valid JSON"), (b"\xff", "UTF-8")])
def test_malformed_bodies_400(emu: EmulatorProcess, raw: bytes, fragment: str) -> None:
    for method, path in (("PUT", "Sim/Enable"), ("PUT", "Sim/Reset"), ("POST", "RawData"), ("POST", "FailedData")):
        assert_error(api(emu, method, path, raw=raw), 400, fragment)


def test_put_404_unknown_iccid_changes_nothing(emu: EmulatorProcess) -> None:
    assert_error(api(emu, "PUT", "Sim/Enable", {"ICCID": UNKNOWN, "Enable": False}), 404, UNKNOWN)
    assert_error(api(emu, "PUT", "Sim/Reset", {"ICCID": UNKNOWN}), 404, UNKNOWN)
    assert emu.stats()["by_status"] == {"404": 2}


def test_faults_apply_to_sim_endpoints(emu: EmulatorProcess) -> None:
    emu.set_faults(script=[503, 500], per_iccid={I1: [429]}, retry_after=2)
    resp = api(emu, "PUT", "Sim/Enable", {"ICCID": I0, "Enable": False})
    assert_error(resp, 503)
    assert resp.headers["Retry-After"] == "2"
    assert_error(api(emu, "GET", f"Sim/Enable/{I0}"), 500)
    assert_error(api(emu, "PUT", "Sim/Reset", {"ICCID": I1}), 429)  # the ICCID of the body picks its script
    assert emu.device_state(I0)["enabled"] is True and emu.device_state(I1)["connects"] == 1
    enable(emu, I0, False)
    stats = emu.stats()
    assert stats["requests"] == 4 and stats["by_status"] == {"503": 1, "500": 1, "429": 1, "200": 1}
    assert stats["by_endpoint"]["PUT Sim/Enable"] == {"503": 1, "200": 1}
    emu.set_faults(script=["drop"])
    with pytest.raises(requests.ConnectionError):
        api(emu, "GET", f"Device/Sim/Detail/{I0}")
    assert emu.stats()["dropped"] == 1
