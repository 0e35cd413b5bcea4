# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""run_downlink: the task result for single and batch mode, check mode, journal, validation."""

from __future__ import annotations

import json

import pytest

from ansible_collections.monoz.link.plugins.module_utils._api_client import MonozClient
from ansible_collections.monoz.link.plugins.module_utils._downlink_runner import run_downlink
from ansible_collections.monoz.link.tests.unit.fakes import (
    API_KEY,
    API_URL,
    ICCID,
    ORG_ID,
    PUBLISH_URL,
    PUBLISHED,
    FakeSession,
    SleepRecorder,
    api_error,
    make_response,
    ok,
)

ICCID2 = "8988280666000000002"
ICCID3 = "8988280666000000003"
BODY = {"ICCID": ICCID, "Topic": "", "Message": "reboot", "QoS": 0, "Format": 1}


def params(**overrides) -> dict:
    """Option values as AnsibleModule hands them over (defaults applied)."""
    values = {
        "org_id": ORG_ID, "api_key": API_KEY, "api_url": API_URL, "timeout": 30.0, "validate_certs": True,
        "retries": 3, "iccid": None, "devices": None, "payload": "reboot", "format": None, "topic": "",
        "qos": 0, "retain": None, "concurrency": 8, "rate_limit": 0.0, "journal": None,
    }
    values.update(overrides)
    return values


class ClientFactory:
    """Builds real MonozClients over one scripted FakeSession; remembers its arguments."""

    def __init__(self, *answers) -> None:
        self.session = FakeSession(*answers)
        self.sleep = SleepRecorder()
        self.calls: list[dict] = []

    def __call__(self, **kwargs) -> MonozClient:
        self.calls.append(kwargs)
        return MonozClient(**kwargs, session=self.session, sleep=self.sleep)


class NoClient:
    """A client factory that must never be called."""

    def __call__(self, **kwargs):
        raise AssertionError("client_factory must not be called")


def dump(run) -> str:
    return json.dumps({"result": run.result, "warnings": run.warnings}, default=repr)


# --- single mode -------------------------------------------------------------

def test_single_success_returns_changed_status_response_request_attempts():
    factory = ClientFactory(ok())
    run = run_downlink(params(iccid=ICCID), False, factory)
    assert run.result == {"changed": True, "status_code": 200, "response": PUBLISHED, "request": BODY, "attempts": 1}
    assert run.warnings == []
    assert [(call.url, call.body) for call in factory.session.calls] == [(PUBLISH_URL, BODY)]


def test_single_client_gets_the_connection_options():
    factory = ClientFactory(ok())
    run_downlink(params(iccid=ICCID, timeout=9.0, validate_certs=False, retries=5), False, factory)
    (kwargs,) = factory.calls
    assert {key: kwargs[key] for key in ("api_url", "org_id", "api_key", "timeout", "validate_certs", "retries",
                                         "pool_size")} == {
        "api_url": API_URL, "org_id": ORG_ID, "api_key": API_KEY, "timeout": 9.0, "validate_certs": False,
        "retries": 5, "pool_size": 1}
    assert kwargs["before_attempt"] is None  # rate_limit 0 = unlimited


def test_single_api_failure_returns_failed_with_status_and_api_message():
    factory = ClientFactory(api_error(404, "ICCID not found"))
    run = run_downlink(params(iccid=ICCID), False, factory)
    assert run.result == {
        "changed": False, "failed": True, "request": BODY, "attempts": 1, "status_code": 404,
        "response": {"Error": True, "StatusCode": 404, "Message": "ICCID not found"},
        "msg": f"HTTP 404 Not Found for ICCID {ICCID}: ICCID not found",
    }


def test_single_transport_failure_returns_failed_with_attempts():
    import requests
    factory = ClientFactory(*[requests.exceptions.ConnectionError("Connection refused")] * 2)
    run = run_downlink(params(iccid=ICCID, retries=1), False, factory)
    assert run.result["failed"] is True
    assert run.result["changed"] is False
    assert run.result["attempts"] == 2
    assert "stopping after 2 attempts" in run.result["msg"]


def test_single_attempts_counts_retries_and_warnings_report_them():
    factory = ClientFactory(api_error(503, "busy"), api_error(503, "busy"), ok())
    run = run_downlink(params(iccid=ICCID, retries=3), False, factory)
    assert run.result["attempts"] == 3
    assert run.result["changed"] is True
    assert len(run.warnings) == 2
    assert all("HTTP 503 Service Unavailable" in w and "retries remaining" in w for w in run.warnings)
    assert "(3 retries remaining)" in run.warnings[0]
    assert "(2 retries remaining)" in run.warnings[1]


def test_retry_warnings_never_hold_the_api_key():
    echo = make_response(503, {"Message": f"bad key {API_KEY}"})
    factory = ClientFactory(echo, echo, ok())
    run = run_downlink(params(iccid=ICCID), False, factory)
    assert len(run.warnings) == 2
    assert API_KEY not in json.dumps(run.warnings)
    assert API_KEY not in run.result.get("msg", "")


def test_failure_result_never_holds_an_api_key_echoed_by_the_server():
    # The design: "The API key appears in no output, result, error message".
    factory = ClientFactory(api_error(404, f"no device for key {API_KEY}"))
    run = run_downlink(params(iccid=ICCID), False, factory)
    assert run.result["failed"] is True
    assert API_KEY not in run.result["msg"]
    assert API_KEY not in dump(run)


def test_client_is_closed_after_the_run():
    factory = ClientFactory(ok())
    run_downlink(params(iccid=ICCID), False, factory)
    assert factory.session.closed


def test_check_mode_single_makes_no_client_and_reports_the_request():
    run = run_downlink(params(iccid=ICCID, retain=True), True, NoClient())
    assert run.result == {"changed": True, "request": {**BODY, "RetainLastMessage": True}, "attempts": 0}


def test_check_mode_still_validates():
    run = run_downlink(params(iccid="12x"), True, NoClient())
    assert run.result["failed"] is True
    assert run.result["msg"].startswith("iccid must contain digits only")


# --- batch mode --------------------------------------------------------------

def test_batch_success_returns_results_in_order_and_summary():
    factory = ClientFactory(ok(), ok())
    run = run_downlink(params(devices=[ICCID, ICCID2], concurrency=1), False, factory)
    assert run.result["changed"] is True
    assert "failed" not in run.result
    assert [r["iccid"] for r in run.result["results"]] == [ICCID, ICCID2]
    assert [r["status"] for r in run.result["results"]] == ["sent", "sent"]
    assert run.result["summary"]["total"] == 2 and run.result["summary"]["sent"] == 2
    assert factory.calls[0]["pool_size"] == 1


def test_batch_pool_holds_concurrency_connections():
    factory = ClientFactory(ok(), ok())
    run_downlink(params(devices=[ICCID, ICCID2], concurrency=16), False, factory)
    assert factory.calls[0]["pool_size"] == 16


def test_batch_with_a_failure_fails_the_task_and_returns_every_result():
    def answer(call):
        return api_error(404, "ICCID not found") if call.body["ICCID"] == ICCID2 else ok()

    factory = ClientFactory(answer, answer, answer)
    run = run_downlink(params(devices=[ICCID, ICCID2, ICCID3], concurrency=1), False, factory)
    assert run.result["failed"] is True
    assert run.result["changed"] is True  # two were published
    assert [r["status"] for r in run.result["results"]] == ["sent", "failed", "sent"]
    assert run.result["msg"] == (
        f"1 of 3 downlinks failed (2 sent, 0 skipped); first failure: HTTP 404 Not Found for ICCID {ICCID2}:"
        " ICCID not found")


def test_batch_401_stops_and_says_so():
    factory = ClientFactory(api_error(401, "Unauthorized"))
    run = run_downlink(params(devices=[ICCID, ICCID2, ICCID3], concurrency=1), False, factory)
    assert len(factory.session.calls) == 1
    assert run.result["failed"] is True
    assert run.result["changed"] is False
    assert run.result["msg"].startswith("the batch stopped at HTTP 401 Unauthorized")
    assert [r["status"] for r in run.result["results"]] == ["failed"] * 3
    assert all(r["msg"].startswith("not attempted") for r in run.result["results"][1:])


def test_check_mode_batch_makes_no_client_and_reports_would_send():
    run = run_downlink(params(devices=[ICCID, ICCID2]), True, NoClient())
    assert run.result["changed"] is True
    assert [r["status"] for r in run.result["results"]] == ["would_send", "would_send"]
    assert run.result["summary"]["total"] == 2


def test_rate_limit_gives_the_client_a_before_attempt_hook():
    factory = ClientFactory(ok())
    run_downlink(params(devices=[ICCID], rate_limit=50.0), False, factory)
    assert callable(factory.calls[0]["before_attempt"])


def test_batch_retry_warnings_are_capped_with_a_tally():
    answers = []
    devices = [str(n) for n in range(1, 31)]
    for device in devices:
        answers += [api_error(503, "busy"), ok()]
    factory = ClientFactory(*answers)
    run = run_downlink(params(devices=devices, concurrency=1), False, factory)
    assert run.result["summary"]["sent"] == 30
    assert len([w for w in run.warnings if "retries remaining" in w]) == 20
    assert "30 requests were retried: 30 after HTTP 503 Service Unavailable" in run.warnings


# --- journal -----------------------------------------------------------------

def test_single_journaled_message_is_skipped_with_changed_false(tmp_path):
    journal = str(tmp_path / "j.jsonl")
    first = run_downlink(params(iccid=ICCID, journal=journal), False, ClientFactory(ok()))
    assert first.result["changed"] is True
    again = ClientFactory()
    run = run_downlink(params(iccid=ICCID, journal=journal), False, again)
    assert again.session.calls == []
    assert run.result["changed"] is False
    assert "failed" not in run.result
    assert "already delivered" in run.result["msg"]


def test_check_mode_single_journaled_message_reports_changed_false(tmp_path):
    journal = str(tmp_path / "j.jsonl")
    run_downlink(params(iccid=ICCID, journal=journal), False, ClientFactory(ok()))
    run = run_downlink(params(iccid=ICCID, journal=journal), True, NoClient())
    assert run.result["changed"] is False


def test_changed_message_is_not_skipped(tmp_path):
    journal = str(tmp_path / "j.jsonl")
    run_downlink(params(iccid=ICCID, journal=journal), False, ClientFactory(ok()))
    factory = ClientFactory(ok())
    run = run_downlink(params(iccid=ICCID, journal=journal, topic="/other"), False, factory)
    assert run.result["changed"] is True
    assert len(factory.session.calls) == 1


def test_journal_skip_does_not_depend_on_the_api_key(tmp_path):
    journal = str(tmp_path / "j.jsonl")
    run_downlink(params(iccid=ICCID, journal=journal), False, ClientFactory(ok()))
    again = ClientFactory()
    run = run_downlink(params(iccid=ICCID, journal=journal, api_key="rotated-key"), False, again)
    assert run.result["changed"] is False
    assert again.session.calls == []


def test_batch_all_skipped_reports_changed_false(tmp_path):
    journal = str(tmp_path / "j.jsonl")
    run_downlink(params(devices=[ICCID, ICCID2], journal=journal), False, ClientFactory(ok(), ok()))
    again = ClientFactory()
    run = run_downlink(params(devices=[ICCID, ICCID2], journal=journal), False, again)
    assert again.session.calls == []
    assert run.result["changed"] is False
    assert "failed" not in run.result
    assert [r["status"] for r in run.result["results"]] == ["skipped", "skipped"]
    assert run.result["summary"]["skipped"] == 2


def test_interrupted_batch_resumes_where_it_stopped(tmp_path):
    journal = str(tmp_path / "j.jsonl")
    first = ClientFactory(ok(), api_error(500, "boom"), ok())
    run_downlink(params(devices=[ICCID, ICCID2, ICCID3], journal=journal, concurrency=1), False, first)
    second = ClientFactory(ok())
    run = run_downlink(params(devices=[ICCID, ICCID2, ICCID3], journal=journal, concurrency=1), False, second)
    assert [call.body["ICCID"] for call in second.session.calls] == [ICCID2]
    assert [r["status"] for r in run.result["results"]] == ["skipped", "sent", "skipped"]


def test_journal_never_holds_the_api_key(tmp_path):
    journal = tmp_path / "j.jsonl"
    run_downlink(params(devices=[ICCID, ICCID2], journal=str(journal)), False, ClientFactory(ok(), ok()))
    text = journal.read_text()
    assert text.count("\n") == 2
    assert API_KEY not in text


def test_journal_in_missing_directory_fails_naming_the_path_before_any_request(tmp_path):
    path = str(tmp_path / "missing" / "j.jsonl")
    run = run_downlink(params(iccid=ICCID, journal=path), False, NoClient())
    assert run.result["failed"] is True
    assert path in run.result["msg"]


def test_torn_journal_line_gives_a_warning(tmp_path):
    journal = tmp_path / "j.jsonl"
    journal.write_text('{"v":1,"dig')
    run = run_downlink(params(iccid=ICCID, journal=str(journal)), False, ClientFactory(ok()))
    assert run.result["changed"] is True
    assert any("ignored 1 unreadable line" in w for w in run.warnings)


# --- validation --------------------------------------------------------------

@pytest.mark.parametrize("overrides, option", [
    ({"api_url": "link.monoz.io/api/v1"}, "api_url"),
    ({"api_url": "ftp://link.monoz.io"}, "api_url"),
    ({"api_url": "https://"}, "api_url"),
    ({"api_url": ""}, "api_url"),
    ({"timeout": 0}, "timeout"),
    ({"timeout": -1.0}, "timeout"),
    ({"timeout": float("nan")}, "timeout"),
    ({"retries": 21}, "retries"),
    ({"retries": -1}, "retries"),
    ({"concurrency": 0}, "concurrency"),
    ({"concurrency": 257}, "concurrency"),
    ({"rate_limit": -1.0}, "rate_limit"),
    ({"rate_limit": float("nan")}, "rate_limit"),
    ({"org_id": ""}, "org_id"),
    ({"org_id": "   "}, "org_id"),
    ({"org_id": None}, "org_id"),
    ({"api_key": ""}, "api_key"),
    ({"api_key": None}, "api_key"),
    ({"qos": 2}, "qos"),
    ({"topic": "no-slash"}, "topic"),
    ({"payload": None}, "payload"),
    ({"payload": 42}, "payload"),
    ({"format": "json", "payload": "not json"}, "payload"),
])
@pytest.mark.parametrize("mode", ["single", "batch"])
def test_bad_option_fails_naming_it_and_makes_no_client(overrides, option, mode):
    target = {"iccid": ICCID} if mode == "single" else {"devices": [ICCID, ICCID2]}
    run = run_downlink(params(**target, **overrides), False, NoClient())
    assert run.result["failed"] is True
    assert run.result["changed"] is False
    assert option in run.result["msg"]


@pytest.mark.parametrize("overrides", [
    {"retries": 0}, {"retries": 20}, {"concurrency": 1}, {"concurrency": 256}, {"rate_limit": 0.5},
    {"api_url": "http://127.0.0.1:8080/api/v1/"},
])
def test_boundary_option_values_are_accepted(overrides):
    run = run_downlink(params(iccid=ICCID, **overrides), True, NoClient())
    assert "failed" not in run.result


def test_missing_key_message_names_the_environment_variable():
    run = run_downlink(params(iccid=ICCID, api_key=None), False, NoClient())
    assert "MONOZ_API_KEY" in run.result["msg"]


def test_bad_device_in_batch_fails_naming_index_and_iccid_and_sends_nothing():
    devices = [ICCID, ICCID2, {"iccid": "123", "topic": "oops"}]
    run = run_downlink(params(devices=devices), False, NoClient())
    assert run.result["failed"] is True
    assert run.result["msg"].startswith("devices[2] (ICCID 123): topic")
