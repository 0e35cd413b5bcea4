"""Error paths: refused key, unknown device, bad input, server faults and retries."""

from __future__ import annotations

import json

import pytest

from e2e_support import ORG, WRONG_KEY, iccid, shows, unwrapped

UNKNOWN_ICCID = "8988280666999999999"


def test_wrong_key_fails_with_401_naming_the_org_and_hiding_the_key(emu, ansible, execution):
    device = iccid(20)
    run = ansible.downlink(
        [{"iccid": device, "payload": "never", "profile": "wrong"}],
        {"default": emu.profile(), "wrong": emu.profile(api_key=WRONG_KEY)},
    )

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert result["failed"] is True
    assert result["status_code"] == 401
    assert result["attempts"] == 1  # a refused key is not retried
    assert result["msg"].startswith(f"HTTP 401 Unauthorized for ICCID {device}: "), result["msg"]
    assert repr(ORG) in result["msg"] and "api_key" in result["msg"], result["msg"]
    assert not shows(WRONG_KEY, run.output)
    assert WRONG_KEY not in json.dumps(run.result)
    assert emu.stats()["by_status"] == {"401": 1}
    assert emu.received_exactly(device, 0) == []


def test_unknown_iccid_fails_with_404_and_the_api_message(emu, ansible, execution):
    run = ansible.downlink([{"iccid": UNKNOWN_ICCID, "payload": "hello"}], {"default": emu.profile()})

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert result["failed"] is True
    assert result["status_code"] == 404
    assert result["response"]["StatusCode"] == 404
    api_message = result["response"]["Message"]
    assert api_message  # the emulator explains; the module must quote it
    assert result["msg"] == f"HTTP 404 Not Found for ICCID {UNKNOWN_ICCID}: {api_message}"
    assert result["attempts"] == 1
    assert emu.stats()["by_status"] == {"404": 1}


INVALID_CALLS = [
    pytest.param({"iccid": "8988A0666000000001", "payload": "x"}, "iccid", id="iccid-not-digits"),
    pytest.param({"iccid": iccid(21), "payload": "x", "topic": "config/apn"}, "topic", id="topic-without-slash"),
    pytest.param({"iccid": iccid(21), "payload": "x" * 4097}, "payload", id="message-4097-bytes"),
    pytest.param({"iccid": iccid(21), "payload": '{"apn": "iot"', "format": "json"}, "payload", id="json-invalid"),
]


def test_invalid_input_fails_naming_the_option_before_any_request(emu, ansible, execution):
    # All four bad calls in one playbook run (a loop continues past failures).
    calls = [param.values[0] for param in INVALID_CALLS]
    run = ansible.downlink(calls, {"default": emu.profile()})

    assert run.rc != 0, run.describe()
    assert len(run.calls) == len(INVALID_CALLS)
    for param, result in zip(INVALID_CALLS, run.calls):
        option = param.values[1]
        assert result["failed"] is True, (param.id, result)
        assert result["msg"].startswith(option), (param.id, result["msg"])
        assert result.get("attempts", 0) == 0, (param.id, result)
    assert "4097" in run.call(2)["msg"]
    assert "JSON" in run.call(3)["msg"]
    # Nothing reached the wire.
    assert emu.stats()["requests"] == 0


def test_http_500_is_not_retried(emu, ansible, execution):
    device = iccid(22)
    emu.set_faults(script=[500])
    run = ansible.downlink([{"iccid": device, "payload": "once"}], {"default": emu.profile()})

    assert run.rc != 0, run.describe()
    result = run.call(0)
    assert result["status_code"] == 500
    assert result["attempts"] == 1
    assert result["msg"].startswith(f"HTTP 500 Internal Server Error for ICCID {device}: "), result["msg"]
    assert result["response"]["Message"] in result["msg"]
    assert emu.stats()["requests"] == 1
    assert emu.received_exactly(device, 0) == []


def test_two_503_then_success_is_delivered_once_after_three_attempts(emu, ansible, execution):
    device = iccid(23)
    emu.set_faults(script=[503, 503])
    run = ansible.downlink([{"iccid": device, "payload": "third time"}], {"default": emu.profile()})

    assert run.rc == 0, run.describe()
    result = run.call(0)
    assert result["attempts"] == 3
    assert result["status_code"] == 200
    stats = emu.stats()
    assert stats["requests"] == 3
    assert stats["by_status"] == {"503": 2, "200": 1}
    assert [m["payload"] for m in emu.received_exactly(device, 1)] == ["third time"]


def test_429_retry_after_is_honoured(emu, ansible, execution):
    before, device = iccid(24), iccid(25)
    emu.set_faults(per_iccid={device: [{"status": 429, "retry_after": 2}]})
    run = ansible.downlink(
        [
            # A first, unfaulted call stamps the time the second one starts.
            {"iccid": before, "payload": "stamp"},
            {"iccid": device, "payload": "after 429"},
        ],
        {"default": emu.profile()},
    )

    assert run.rc == 0, run.describe()
    assert run.call(1)["attempts"] == 2
    assert run.call(1)["status_code"] == 200
    assert "retrying in 2.0s" in unwrapped(run.output), run.describe()
    assert emu.stats()["by_status"] == {"200": 2, "429": 1}
    stamp, delivered = emu.messages()
    assert (stamp["iccid"], delivered["iccid"]) == (before, device)
    # Un-honoured, the back-off for a first retry is at most 0.5 s.
    assert delivered["ts"] - stamp["ts"] >= 2.0
    assert [m["payload"] for m in emu.received_exactly(device, 1)] == ["after 429"]
