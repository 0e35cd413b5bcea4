# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""monoz_data_info: the window sent, records oldest first, newest, filters, check mode, errors."""

from __future__ import annotations

import calendar
import json

import pytest

from ansible_collections.monoz.link.plugins.module_utils import _api_client, _data_info
from ansible_collections.monoz.link.plugins.modules import monoz_data_info
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY, ORG_ID
from ansible_collections.monoz.link.tests.unit.plugins.modules.module_harness import (
    ScriptedAPI,
    api_answer,
    base_args,
    error_answer,
    run_module,
    run_module_output,
)

I1, I2, I3 = "8988280666000000001", "8988280666000000002", "8988280666000000003"
NOW = calendar.timegm((2024, 3, 11, 12, 0, 0, 0, 0, 0)) * 10**9 + 123_456_789  # 2024-03-11T12:00:00.123456789Z


def window(start: str, end: str) -> dict:
    return {"StartTime": start, "EndTime": end}


def record(stamp: str, iccid, payload: str, topic=None) -> dict:
    return {"Timestamp": stamp, "Payload": payload, "ICCID": iccid, "Topic": topic or f"{ORG_ID}/{iccid}/status"}


def run(args):
    return run_module(monoz_data_info, args)


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    monkeypatch.setattr(_data_info, "now_ns", lambda: NOW)
    monkeypatch.setattr(_api_client, "backoff_delay", lambda retry_number, rng=None: 0.0)


def test_look_back_sends_one_post_with_the_window_in_milliseconds():
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"),
                   api_answer(data=[]))
        kind, result = run(base_args(start="4h"))
    assert kind == "exit"
    assert len(api.requests) == 1
    assert result == {"changed": False, "records": [], "count": 0, "newest": None,
                      "window": {"start": "2024-03-11T08:00:00.1234567Z", "end": "2024-03-11T12:00:00.1234567Z"}}


@pytest.mark.parametrize("start, sent", [("30m", "2024-03-11T11:30:00.123Z"), ("2d", "2024-03-09T12:00:00.123Z")])
def test_other_look_backs(start, sent):
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window(sent, "2024-03-11T12:00:00.124Z"), api_answer(data=[]))
        kind, _result = run(base_args(start=start))
    assert kind == "exit"


def test_kind_failed_reads_failed_data_between_iso_times():
    with ScriptedAPI() as api:
        api.expect("POST", "FailedData", window("2024-03-11T06:00:00.000Z", "2024-03-11T10:00:00.000Z"),
                   api_answer(data=[]))
        kind, _result = run(base_args(kind="failed", start="2024-03-11T08:00:00+02:00", end="2024-03-11T10:00:00Z"))
    assert kind == "exit"


def test_records_come_oldest_first_with_count_and_newest():
    # The API promises no order; the emulator answers newest first.
    answer = api_answer(data=[
        record("2024-03-11T11:00:00.0000003Z", I2, "c"),
        record("2024-03-11T10:00:00.5799558Z", I1, "b"),
        record("2024-03-11T10:00:00.5799458Z", I1, "a"),
    ])
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"), answer)
        kind, result = run(base_args(start="4h"))
    assert kind == "exit"
    assert [r["payload"] for r in result["records"]] == ["a", "b", "c"]
    assert result["records"][0] == {"timestamp": "2024-03-11T10:00:00.5799458Z", "iccid": I1,
                                    "topic": f"{ORG_ID}/{I1}/status", "payload": "a"}
    assert result["count"] == 3
    assert result["newest"] == "2024-03-11T11:00:00.0000003Z"
    assert result["changed"] is False


def test_newest_given_back_as_start_keeps_all_seven_digits():
    newest = "2024-03-11T10:00:00.5799558Z"
    answer = api_answer(data=[record("2024-03-11T10:00:00.5799458Z", I1, "older, same millisecond"),
                              record(newest, I1, "newest")])
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T10:00:00.579Z", "2024-03-11T12:00:00.124Z"), answer)
        kind, result = run(base_args(start=newest))
    assert kind == "exit"
    # The window is inclusive: the newest record comes again, the older one does not.
    assert [r["payload"] for r in result["records"]] == ["newest"]


def test_records_outside_the_window_asked_are_dropped():
    answer = api_answer(data=[record("2024-03-11T07:59:59.9Z", I1, "before"),
                              record("2024-03-11T09:00:00Z", I1, "inside"),
                              record("2024-03-11T12:00:01Z", I1, "after")])
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"), answer)
        kind, result = run(base_args(start="4h"))
    assert [r["payload"] for r in result["records"]] == ["inside"]


def test_a_null_iccid_is_taken_from_the_topic_level_after_the_org():
    answer = api_answer(data=[record("2024-03-11T09:00:00Z", None, "a", topic=f"/{ORG_ID}/{I2}"),
                              record("2024-03-11T09:00:01Z", None, "b", topic=f"site/{ORG_ID.upper()}/{I3}/temp"),
                              record("2024-03-11T09:00:02Z", None, "c", topic="elsewhere/x")])
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"), answer)
        kind, result = run(base_args(start="4h"))
    assert [r["iccid"] for r in result["records"]] == [I2, I3, None]


def test_iccid_or_devices_narrow_the_records_to_those_devices():
    def answer():
        return api_answer(data=[record("2024-03-11T09:00:00Z", I1, "1"), record("2024-03-11T09:00:01Z", I2, "2"),
                                record("2024-03-11T09:00:02Z", None, "3", topic=f"{ORG_ID}/{I3}/x")])
    sent = window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z")
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", sent, answer(), answer(), answer())
        _kind, single = run(base_args(start="4h", iccid=I2))
        _kind, fleet = run(base_args(start="4h", devices=[I3, {"iccid": I1, "name": "pump"}]))
        _kind, nobody = run(base_args(start="4h", devices=[]))
    assert [r["payload"] for r in single["records"]] == ["2"]
    assert [r["payload"] for r in fleet["records"]] == ["1", "3"]
    assert fleet["count"] == 2 and fleet["newest"] == "2024-03-11T09:00:02Z"
    assert nobody["records"] == [] and nobody["newest"] is None


def test_check_mode_still_reads():
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"),
                   api_answer(data=[record("2024-03-11T09:00:00Z", I1, "x")]))
        kind, result = run(base_args(start="4h", _ansible_check_mode=True))
    assert (kind, result["changed"], result["count"]) == ("exit", False, 1)


def test_null_data_is_no_records():
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"), api_answer())
        kind, result = run(base_args(start="4h"))
    assert (kind, result["records"], result["count"], result["newest"]) == ("exit", [], 0, None)


def test_records_without_a_timestamp_come_first_with_a_warning(capsys):
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"),
                   api_answer(data=[record("2024-03-11T09:00:00Z", I1, "dated"), record(None, I1, "undated")]))
        output = run_module_output(monoz_data_info, base_args(start="4h"), capsys)
    assert [r["payload"] for r in output["records"]] == ["undated", "dated"]
    assert output["newest"] == "2024-03-11T09:00:00Z"
    assert "no ISO 8601 timestamp" in json.dumps(output["warnings"])


def test_a_window_older_than_the_api_keeps_data_gives_a_warning(capsys):
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-07T12:00:00.123Z", "2024-03-11T12:00:00.124Z"),
                   api_answer(data=[]))
        output = run_module_output(monoz_data_info, base_args(start="4d"), capsys)
    assert "more than 72 hours ago" in json.dumps(output["warnings"])


def test_api_errors_fail_naming_the_endpoint_and_message():
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"),
                   error_answer(400, "StartTime is not in the correct format"))
        kind, result = run(base_args(start="4h"))
    assert kind == "fail"
    assert result["msg"] == "HTTP 400 Bad Request for RawData: StartTime is not in the correct format"
    assert result["status_code"] == 400
    assert "records" not in result


def test_401_names_the_org():
    with ScriptedAPI() as api:
        api.expect("POST", "FailedData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"),
                   error_answer(401, "Unauthorized"))
        kind, result = run(base_args(start="4h", kind="failed"))
    assert kind == "fail"
    assert result["msg"].startswith("HTTP 401 Unauthorized for FailedData: Unauthorized (the api_key was refused")


@pytest.mark.parametrize("overrides, fragment", [
    ({}, "missing required arguments: start"),
    ({"start": "yesterday"}, "start must be an ISO 8601 time"),
    ({"start": "4H"}, "start must be an ISO 8601 time"),
    ({"start": "2024-03-11T12:00:00Z", "end": "2024-03-11T00:00:00Z"}, "is after end"),
    ({"start": "4h", "end": "4h"}, "end must be an ISO 8601 time"),
    ({"start": "4h", "kind": "all"}, "kind"),
    ({"start": "4h", "iccid": "8988x"}, "iccid must contain digits only"),
    ({"start": "4h", "devices": [I1, {"iccid": "1" * 23}]}, "devices[1] (ICCID 11111111111111111111111): iccid"),
    ({"start": "4h", "iccid": I1, "devices": [I2]}, "mutually exclusive"),
    ({"start": "4h", "concurrency": 4}, "Unsupported parameters"),
])
def test_bad_input_fails_before_any_request(overrides, fragment):
    with ScriptedAPI() as api:
        kind, result = run(base_args(**overrides))
    assert kind == "fail"
    assert fragment in result["msg"]
    assert api.requests == []


def test_the_key_is_in_no_output(capsys):
    with ScriptedAPI() as api:
        api.expect("POST", "RawData", window("2024-03-11T08:00:00.123Z", "2024-03-11T12:00:00.124Z"),
                   api_answer(data=[record("2024-03-11T09:00:00Z", I1, f"payload quoting {API_KEY}")]))
        output = run_module_output(monoz_data_info, base_args(start="4h"), capsys)
    assert API_KEY not in json.dumps(output)
