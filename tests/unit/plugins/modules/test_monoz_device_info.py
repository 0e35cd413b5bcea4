# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""monoz_device_info run the way Ansible runs it: exact HTTP calls, check mode, fleets, no_log."""

from __future__ import annotations

import json

import pytest
import requests

from ansible_collections.monoz.link.plugins.module_utils import _api_client
from ansible_collections.monoz.link.plugins.modules import monoz_device_info
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY
from ansible_collections.monoz.link.tests.unit.plugins.modules.module_harness import (
    ScriptedAPI,
    api_answer,
    base_args,
    detail_answer,
    error_answer,
    run_module,
    run_module_output,
)

I1, I2, I3 = "8988280666000000001", "8988280666000000002", "8988280666000000003"
DEVICE_KEYS = ["name", "iccid", "imei_lock", "activation_date", "expiry_date", "status", "message_count",
               "dl_message_count", "volume", "created_date", "updated_date"]


def detail_path(iccid: str) -> str:
    return f"Device/Sim/Detail/{iccid}"


def run(args):
    return run_module(monoz_device_info, args)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(_api_client, "backoff_delay", lambda retry_number, rng=None: 0.0)


def test_single_device_is_one_get_and_returns_snake_case_details():
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, detail_answer(I1, Name="pump-7", IMEILock=True, Status=0,
                                                               MessageCount=42, DLMessageCount=3, Volume=123))
        kind, result = run(base_args(iccid=I1))
    assert kind == "exit"
    assert api.calls() == [("GET", detail_path(I1), None)]
    assert result["changed"] is False
    assert result["status_code"] == 200
    device = result["device"]
    assert list(device) == DEVICE_KEYS
    assert (device["name"], device["iccid"], device["imei_lock"], device["status"], device["message_count"],
            device["dl_message_count"], device["volume"]) == ("pump-7", I1, True, 0, 42, 3, 123)
    assert device["activation_date"] == "2024-02-11T07:26:54Z"
    assert "results" not in result and "summary" not in result


def test_missing_detail_keys_are_null_and_unknown_ones_snake_cased():
    sparse = api_answer(data={"ICCID": I1, "SimType": "eSIM", "LastIPAddress": "10.0.0.1"})
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, sparse)
        kind, result = run(base_args(iccid=I1))
    assert kind == "exit"
    assert result["device"]["iccid"] == I1
    assert all(result["device"][key] is None for key in DEVICE_KEYS if key != "iccid")
    assert result["device"]["sim_type"] == "eSIM"
    assert result["device"]["last_ip_address"] == "10.0.0.1"


def test_fleet_reads_each_device_once_and_returns_results_in_input_order():
    devices = [I3, {"iccid": I1, "name": "csv column", "payload": "ignored"}, I2]
    with ScriptedAPI() as api:
        for iccid in (I1, I2, I3):
            api.expect("GET", detail_path(iccid), None, detail_answer(iccid))
        kind, result = run(base_args(devices=devices, concurrency=3))
    assert kind == "exit"
    assert result["changed"] is False
    assert [(r["iccid"], r["status"], r["status_code"], r["device"]["iccid"]) for r in result["results"]] == [
        (I3, "ok", 200, I3), (I1, "ok", 200, I1), (I2, "ok", 200, I2)]
    assert result["summary"] == {"total": 3, "ok": 3, "failed": 0}
    assert "device" not in result


def test_a_failed_device_fails_the_task_and_every_result_is_returned():
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, detail_answer(I1))
        api.expect("GET", detail_path(I2), None, error_answer(404, "ICCID not found"))
        api.expect("GET", detail_path(I3), None, detail_answer(I3))
        kind, result = run(base_args(devices=[I1, I2, I3], concurrency=1))
    assert kind == "fail"
    assert result["msg"] == f"1 of 3 devices failed (2 ok); first failure: HTTP 404 Not Found for ICCID {I2}: ICCID not found"
    assert result["results"][1] == {"iccid": I2, "status": "failed", "status_code": 404, "device": None,
                                    "msg": f"HTTP 404 Not Found for ICCID {I2}: ICCID not found"}
    assert [r["status"] for r in result["results"]] == ["ok", "failed", "ok"]
    assert result["summary"] == {"total": 3, "ok": 2, "failed": 1}


def test_single_404_fails_with_status_and_api_message():
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, error_answer(404, "ICCID not found"))
        kind, result = run(base_args(iccid=I1))
    assert kind == "fail"
    assert result["msg"] == f"HTTP 404 Not Found for ICCID {I1}: ICCID not found"
    assert result["status_code"] == 404
    assert "device" not in result


def test_401_stops_the_fleet_at_once_and_the_rest_are_not_attempted():
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, error_answer(401, "Unauthorized"))
        kind, result = run(base_args(devices=[I1, I2, I3], concurrency=1))
    assert kind == "fail"
    assert len(api.requests) == 1
    assert result["msg"].startswith(f"the batch stopped at HTTP 401 Unauthorized: HTTP 401 Unauthorized for ICCID {I1}")
    assert result["msg"].endswith("3 of 3 devices failed or were not attempted")
    assert [r["status"] for r in result["results"]] == ["failed"] * 3
    assert all(r["msg"].startswith("not attempted: the batch stopped after HTTP 401") for r in result["results"][1:])


def test_check_mode_still_reads_and_reports_unchanged():
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, detail_answer(I1))
        kind, result = run(base_args(iccid=I1, _ansible_check_mode=True))
    assert kind == "exit"
    assert result["changed"] is False
    assert result["device"]["iccid"] == I1


def test_a_200_without_data_is_a_failure_naming_the_device():
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, api_answer())
        kind, result = run(base_args(iccid=I1))
    assert kind == "fail"
    assert result["msg"] == f"HTTP 200 OK for ICCID {I1}, but the answer has no Data object; check api_url"


def test_503_is_retried_and_reported_as_a_warning(capsys):
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, error_answer(503, "busy"), detail_answer(I1))
        output = run_module_output(monoz_device_info, base_args(iccid=I1), capsys)
    assert output["device"]["iccid"] == I1
    assert "retries remaining" in json.dumps(output["warnings"])


def test_connection_failures_after_the_budget_fail_the_device():
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, *[requests.exceptions.ConnectionError("refused")] * 2)
        kind, result = run(base_args(iccid=I1, retries=1))
    assert kind == "fail"
    assert "stopping after 2 attempts" in result["msg"]


def test_empty_fleet_reads_nothing():
    with ScriptedAPI() as api:
        kind, result = run(base_args(devices=[]))
    assert kind == "exit"
    assert api.requests == []
    assert result["summary"] == {"total": 0, "ok": 0, "failed": 0}


@pytest.mark.parametrize("overrides, fragment", [
    ({"iccid": "12x"}, "iccid must contain digits only"),
    ({"devices": [I1, I2, {"iccid": "4x2"}]}, "devices[2] (ICCID 4x2): iccid"),
    ({"devices": [I1, {"name": "no iccid"}]}, "devices[1] has no iccid"),
    ({"devices": [I1], "concurrency": 0}, "concurrency"),
    ({"devices": [I1], "rate_limit": -1}, "rate_limit"),
    ({"iccid": I1, "timeout": 0}, "timeout"),
    ({"iccid": I1, "devices": [I2]}, "mutually exclusive"),
    ({}, "one of the following is required: iccid, devices"),
    ({"iccid": I1, "state": "x"}, "Unsupported parameters"),
])
def test_bad_input_fails_before_any_request(overrides, fragment):
    with ScriptedAPI() as api:
        kind, result = run(base_args(**overrides))
    assert kind == "fail"
    assert fragment in result["msg"]
    assert api.requests == []


def test_the_key_is_in_no_output_even_when_the_server_echoes_it(capsys):
    with ScriptedAPI() as api:
        api.expect("GET", detail_path(I1), None, error_answer(404, f"no device for key {API_KEY}"))
        api.expect("GET", detail_path(I2), None, detail_answer(I2, Name=f"named {API_KEY}"))
        output = run_module_output(monoz_device_info, base_args(devices=[I1, I2]), capsys)
    assert output["failed"] is True
    assert API_KEY not in json.dumps(output)


def test_iccid_null_is_refused_rather_than_read_as_an_empty_fleet():
    # A template that rendered nothing: the argument spec lets the key through.
    with ScriptedAPI() as api:
        kind, result = run(base_args(iccid=None) | {"iccid": None})
    assert kind == "fail"
    assert result["msg"] == "iccid or devices is required, but both are null"
    assert api.requests == []
