# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""monoz_downlink run the way Ansible runs it: exact HTTP calls, check mode, options, no_log."""

from __future__ import annotations

import json

import pytest

from ansible_collections.monoz.link.plugins.module_utils import _api_client
from ansible_collections.monoz.link.plugins.modules import monoz_downlink
from ansible_collections.monoz.link.tests.unit.plugins.modules import module_harness as harness
from ansible_collections.monoz.link.tests.unit.plugins.modules.module_harness import base_args
from ansible_collections.monoz.link.tests.unit.fakes import (
    API_KEY,
    ICCID,
    ORG_ID,
    PUBLISH_URL,
    PUBLISHED,
    WireTransport,
    api_error,
    ok,
)

ICCID2 = "8988280666000000002"


def run_module(args: dict):
    """Run main() with exit_json/fail_json patched; return (kind, result)."""
    return harness.run_module(monoz_downlink, args)


def run_module_output(args: dict, capsys) -> dict:
    """Run main() with the real exit_json/fail_json: the JSON Ansible would receive."""
    return harness.run_module_output(monoz_downlink, args, capsys)


def expected_headers(key: str = API_KEY) -> dict:
    return {"X-API-Key": key, "Content-Type": "application/json"}


def assert_request(sent, url: str, body: dict, key: str = API_KEY) -> None:
    assert sent.method == "POST"
    assert sent.url == url
    for name, value in expected_headers(key).items():
        assert sent.headers[name] == value
    assert sent.body == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    # retries pause for backoff_delay() seconds: make every pause zero
    monkeypatch.setattr(_api_client, "backoff_delay", lambda retry_number, rng=None: 0.0)


# --- sending -----------------------------------------------------------------

def test_single_message_makes_exactly_one_post_with_key_and_body():
    with WireTransport(ok()) as wire:
        kind, result = run_module(base_args(iccid=ICCID, payload={"apn": "iot.example"}, topic="/config",
                                            qos=1, retain=True))
    body = {"ICCID": ICCID, "Topic": "/config", "Message": '{"apn":"iot.example"}', "QoS": 1, "Format": 0,
            "RetainLastMessage": True}
    assert kind == "exit"
    assert len(wire.requests) == 1
    assert_request(wire.requests[0], PUBLISH_URL, body)
    assert wire.requests[0].kwargs["timeout"] == 30.0
    assert result["changed"] is True
    assert result["status_code"] == 200
    assert result["response"] == PUBLISHED
    assert result["request"] == body
    assert result["attempts"] == 1


def test_text_message_and_defaults():
    with WireTransport(ok()) as wire:
        kind, result = run_module(base_args(iccid=ICCID, payload="reboot"))
    assert kind == "exit"
    assert_request(wire.requests[0], PUBLISH_URL, {"ICCID": ICCID, "Topic": "", "Message": "reboot", "QoS": 0,
                                                   "Format": 1})


def test_iccid_given_as_a_yaml_int_is_sent_as_a_string():
    with WireTransport(ok()) as wire:
        kind, result = run_module(base_args(iccid=8988280666000000001, payload="x"))
    assert kind == "exit"
    assert json.loads(wire.requests[0].body)["ICCID"] == "8988280666000000001"


def test_batch_makes_one_post_per_device_with_per_device_overrides():
    devices = [ICCID, {"iccid": ICCID2, "payload": "other", "topic": "/t"}, {"iccid": ICCID, "payload": "reboot"}]
    with WireTransport(ok(), ok(), ok()) as wire:
        kind, result = run_module(base_args(devices=devices, payload={"a": 1}, concurrency=1))
    assert kind == "exit"
    sent = [json.loads(r.body) for r in wire.requests]
    # one worker: the whole chain of the first ICCID, then the next ICCID
    assert sent == [
        {"ICCID": ICCID, "Topic": "", "Message": '{"a":1}', "QoS": 0, "Format": 0},
        {"ICCID": ICCID, "Topic": "", "Message": "reboot", "QoS": 0, "Format": 1},
        {"ICCID": ICCID2, "Topic": "/t", "Message": "other", "QoS": 0, "Format": 1},
    ]
    assert all(r.url == PUBLISH_URL and r.headers["X-API-Key"] == API_KEY for r in wire.requests)
    assert result["changed"] is True
    assert [(r["iccid"], r["status"]) for r in result["results"]] == [(ICCID, "sent"), (ICCID2, "sent"),
                                                                      (ICCID, "sent")]
    assert {k: result["summary"][k] for k in ("total", "sent", "failed", "skipped")} == {
        "total": 3, "sent": 3, "failed": 0, "skipped": 0}


def test_batch_in_parallel_sends_each_device_once():
    devices = [str(n) for n in range(1, 51)]
    with WireTransport(handler=lambda request: ok()) as wire:
        kind, result = run_module(base_args(devices=devices, payload="ping", concurrency=8))
    assert kind == "exit"
    assert sorted(json.loads(r.body)["ICCID"] for r in wire.requests) == sorted(devices)
    assert [r["iccid"] for r in result["results"]] == devices


def test_two_503_then_200_reports_three_attempts_and_retry_warnings(capsys):
    with WireTransport(api_error(503, "busy"), api_error(503, "busy"), ok()) as wire:
        output = run_module_output(base_args(iccid=ICCID, payload="x"), capsys)
    assert len(wire.requests) == 3
    assert output["attempts"] == 3
    assert output["changed"] is True
    # 2.19+ return warnings as structured summaries, older cores as strings
    assert json.dumps(output["warnings"]).count("retries remaining") == 2


def test_api_error_fails_the_task_with_status_and_message():
    with WireTransport(api_error(404, "ICCID not found")) as wire:
        kind, result = run_module(base_args(iccid=ICCID, payload="x"))
    assert kind == "fail"
    assert len(wire.requests) == 1
    assert result["msg"] == f"HTTP 404 Not Found for ICCID {ICCID}: ICCID not found"
    assert result["status_code"] == 404
    assert result["changed"] is False


def test_batch_401_stops_and_fails():
    with WireTransport(api_error(401, "Unauthorized")) as wire:
        kind, result = run_module(base_args(devices=[ICCID, ICCID2, "3"], payload="x", concurrency=1))
    assert kind == "fail"
    assert len(wire.requests) == 1
    assert [r["status"] for r in result["results"]] == ["failed"] * 3
    assert "401" in result["msg"]


# --- check mode --------------------------------------------------------------

def test_check_mode_single_sends_nothing_and_reports_changed():
    with WireTransport() as wire:
        kind, result = run_module(base_args(iccid=ICCID, payload="x", _ansible_check_mode=True))
    assert wire.requests == []
    assert kind == "exit"
    assert result["changed"] is True
    assert result["request"] == {"ICCID": ICCID, "Topic": "", "Message": "x", "QoS": 0, "Format": 1}


def test_check_mode_batch_sends_nothing_and_reports_would_send():
    with WireTransport() as wire:
        kind, result = run_module(base_args(devices=[ICCID, ICCID2], payload="x", _ansible_check_mode=True))
    assert wire.requests == []
    assert kind == "exit"
    assert result["changed"] is True
    assert [r["status"] for r in result["results"]] == ["would_send", "would_send"]


def test_check_mode_with_journal_writes_no_journal(tmp_path):
    journal = tmp_path / "j.jsonl"
    with WireTransport() as wire:
        kind, result = run_module(base_args(iccid=ICCID, payload="x", journal=str(journal),
                                            _ansible_check_mode=True))
    assert kind == "exit"
    assert wire.requests == []
    assert not journal.exists()


def test_journal_makes_a_rerun_send_nothing(tmp_path):
    args = base_args(devices=[ICCID, ICCID2], payload="x", journal=str(tmp_path / "j.jsonl"))
    with WireTransport(ok(), ok()):
        run_module(args)
    with WireTransport() as wire:
        kind, result = run_module(args)
    assert wire.requests == []
    assert kind == "exit"
    assert result["changed"] is False
    assert result["summary"]["skipped"] == 2


# --- options -----------------------------------------------------------------

@pytest.mark.parametrize("missing", ["org_id", "api_key"])
def test_missing_credentials_fail_before_any_request(missing):
    with WireTransport() as wire:
        kind, result = run_module(base_args(iccid=ICCID, payload="x", **{missing: None}))
    assert kind == "fail"
    assert missing in result["msg"]
    assert wire.requests == []


def test_credentials_and_url_fall_back_to_environment(monkeypatch):
    monkeypatch.setenv("MONOZ_ORG_ID", "envorg")
    monkeypatch.setenv("MONOZ_API_KEY", "env-key-8c1d")
    monkeypatch.setenv("MONOZ_API_URL", "https://env.example.invalid/v9/")
    with WireTransport(ok()) as wire:
        kind, result = run_module({"iccid": ICCID, "payload": "x"})
    assert kind == "exit"
    assert_request(wire.requests[0], "https://env.example.invalid/v9/envorg/Publish/Message",
                   {"ICCID": ICCID, "Topic": "", "Message": "x", "QoS": 0, "Format": 1}, key="env-key-8c1d")


def test_options_win_over_environment(monkeypatch):
    monkeypatch.setenv("MONOZ_ORG_ID", "envorg")
    monkeypatch.setenv("MONOZ_API_KEY", "env-key-8c1d")
    with WireTransport(ok()) as wire:
        run_module(base_args(iccid=ICCID, payload="x"))
    assert wire.requests[0].url == PUBLISH_URL
    assert wire.requests[0].headers["X-API-Key"] == API_KEY


def test_default_api_url_is_the_vendor_endpoint():
    with WireTransport(ok()) as wire:
        run_module({"org_id": ORG_ID, "api_key": API_KEY, "iccid": ICCID, "payload": "x"})
    assert wire.requests[0].url == f"https://link.monoz.io/api/v1/{ORG_ID}/Publish/Message"


def test_iccid_and_devices_are_mutually_exclusive():
    with WireTransport() as wire:
        kind, result = run_module(base_args(iccid=ICCID, devices=[ICCID2], payload="x"))
    assert kind == "fail"
    assert "mutually exclusive" in result["msg"]
    assert wire.requests == []


def test_one_of_iccid_or_devices_is_required():
    kind, result = run_module(base_args(payload="x"))
    assert kind == "fail"
    assert "iccid" in result["msg"] and "devices" in result["msg"]


@pytest.mark.parametrize("overrides, fragment", [
    ({"qos": 2}, "qos"),
    ({"format": "xml"}, "format"),
    ({"iccid": "89882806660000000x1"}, "iccid"),
    ({"topic": "config"}, "topic"),
    ({"payload": 42}, "payload"),
    ({"concurrency": 0}, "concurrency"),
])
def test_invalid_option_fails_before_any_request(overrides, fragment):
    with WireTransport() as wire:
        kind, result = run_module(base_args(**{"iccid": ICCID, "payload": "x", **overrides}))
    assert kind == "fail"
    assert fragment in result["msg"]
    assert wire.requests == []


def test_bad_device_anywhere_fails_the_batch_before_any_request():
    devices = [str(n) for n in range(1, 500)] + [{"iccid": "42", "qos": 5}]
    with WireTransport() as wire:
        kind, result = run_module(base_args(devices=devices, payload="x"))
    assert kind == "fail"
    assert result["msg"].startswith("devices[499] (ICCID 42): qos")
    assert wire.requests == []


# --- the key never leaks -----------------------------------------------------

def test_api_key_is_in_no_result_on_success():
    with WireTransport(ok(), ok()):
        kind, result = run_module(base_args(devices=[ICCID, ICCID2], payload="x"))
    assert kind == "exit"
    assert API_KEY not in json.dumps(result)


def test_api_key_is_in_no_result_on_401():
    with WireTransport(api_error(401, "Unauthorized")):
        kind, result = run_module(base_args(iccid=ICCID, payload="x"))
    assert kind == "fail"
    assert API_KEY not in json.dumps(result)


def test_api_key_is_in_no_result_on_connection_failure():
    import requests
    with WireTransport(*[requests.exceptions.ConnectionError(f"refused {API_KEY}")] * 4):
        kind, result = run_module(base_args(iccid=ICCID, payload="x"))
    assert kind == "fail"
    assert API_KEY not in json.dumps(result)


def test_api_key_echoed_by_the_server_is_in_no_module_output(capsys):
    with WireTransport(api_error(400, f"bad key {API_KEY}")):
        output = run_module_output(base_args(iccid=ICCID, payload="x"), capsys)
    assert output["failed"] is True
    assert API_KEY not in json.dumps(output)


def test_api_key_echoed_by_the_server_is_in_no_batch_output(capsys):
    with WireTransport(handler=lambda request: api_error(404, f"unknown device, key {API_KEY}")):
        output = run_module_output(base_args(devices=[ICCID, ICCID2], payload="x"), capsys)
    assert output["failed"] is True
    assert API_KEY not in json.dumps(output)


def test_api_key_with_trailing_newline_is_in_no_module_output(capsys):
    # e.g. api_key: "{{ lookup('ansible.builtin.file', 'key.txt', rstrip=false) }}"
    # The surrounding whitespace is stripped (a header cannot carry it) and
    # the key is sent; neither form of it may reach the output.
    key = "file-key-0a9b7c\n"
    with WireTransport(ok()) as wire:
        output = run_module_output(base_args(iccid=ICCID, payload="x", api_key=key), capsys)
    assert wire.requests[0].headers["X-API-Key"] == "file-key-0a9b7c"
    assert output["changed"] is True
    assert "file-key-0a9b7c" not in json.dumps(output)


def test_validate_certs_false_turns_verification_off_even_with_a_ca_bundle_in_the_environment(monkeypatch):
    # Hosts with REQUESTS_CA_BUNDLE exported (this one, most CI images) must
    # still honour validate_certs=false.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    with WireTransport(ok()) as wire:
        kind, result = run_module(base_args(iccid=ICCID, payload="x", validate_certs=False))
    assert kind == "exit"
    assert wire.requests[0].kwargs["verify"] is False


def test_validate_certs_defaults_to_verifying(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with WireTransport(ok()) as wire:
        run_module(base_args(iccid=ICCID, payload="x"))
    assert wire.requests[0].kwargs["verify"] is True
