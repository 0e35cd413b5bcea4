"""monoz.link.raw_data on its own, against a small fake of the RawData/FailedData API over real HTTP.

Windows (each starts at the newest timestamp fetched), the boundary dedupe
(windows include both ends), checkpoint resume, error handling (logged
without the key, retried at the next interval, never fatal), arguments.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from eda_support import API_KEY, ORG, Harness, SourceRunner, assert_no_secret
from fake_api import FakeApi, stamp, ticks

ICCID = "8988280666000000001"


@pytest.fixture
def api():
    with FakeApi(ORG, API_KEY) as fake:
        yield fake


def args_for(api: FakeApi, **extra: Any) -> dict[str, Any]:
    return {"org_id": ORG, "api_key": API_KEY, "api_url": api.api_url, **extra}


@pytest.fixture
def harness(raw_data, api):
    made: list[Harness] = []

    def make(start: str, **extra: Any) -> Harness:
        made.append(Harness(raw_data, args_for(api, **extra), start))
        return made[-1]

    yield make
    for item in made:
        item.close()


def payloads(events: list[dict[str, Any]]) -> list[str]:
    return [event["monoz"]["payload"] for event in events]


NOW = 1_790_000_000.0  # a fixed "now" for the windowed tests


def at(seconds: float, extra_ticks: int = 0) -> str:
    return stamp(-seconds, now=NOW, extra_ticks=extra_ticks)


# -- windows ------------------------------------------------------------------------------------


def test_first_window_request_and_events_oldest_first(api, harness):
    api.add(at(1), "first")
    api.add(at(3), '{"config_version": 2}', topic=f"/DEMO/{ICCID}/status")
    api.add(at(2), "second", iccid=None, topic=f"/DEMO/{ICCID}")
    api.add(at(20), "after the window")
    poller = harness(at(0))
    events = poller.poll(at(10))
    assert payloads(events) == ["first", "second", '{"config_version": 2}']
    assert events[1]["monoz"] == {"iccid": ICCID, "topic": f"/DEMO/{ICCID}", "timestamp": at(2), "payload": "second"}
    assert events[2]["monoz"]["payload_json"] == {"config_version": 2}
    request = api.requests[0]
    assert request["path"] == f"/api/v1/{ORG}/RawData"
    assert json.loads(request["body"]) == {"StartTime": at(0), "EndTime": at(10)}
    assert request["headers"]["X-API-Key"] == API_KEY


def test_each_window_starts_at_the_newest_timestamp_and_the_boundary_is_not_emitted_again(api, harness):
    api.add(at(1), "a")
    api.add(at(5), "b")
    poller = harness(at(0))
    assert payloads(poller.poll(at(10))) == ["a", "b"]
    assert payloads(poller.poll(at(20))) == []  # the API returned "b" again (inclusive start)
    assert json.loads(api.requests[1]["body"]) == {"StartTime": at(5), "EndTime": at(20)}
    api.add(at(15), "c")
    assert payloads(poller.poll(at(30))) == ["c"]
    assert json.loads(api.requests[2]["body"]) == {"StartTime": at(5), "EndTime": at(30)}


def test_a_late_record_older_than_now_but_newer_than_the_window_start_is_caught(api, harness):
    api.add(at(5), "early")
    poller = harness(at(0))
    assert payloads(poller.poll(at(10))) == ["early"]
    api.add(at(8), "lagging")  # stored after the first poll although it happened before it ended
    assert payloads(poller.poll(at(20))) == ["lagging"]


def test_a_new_record_at_exactly_the_boundary_timestamp_is_emitted_once(api, harness):
    api.add(at(5), "one")
    poller = harness(at(0))
    assert payloads(poller.poll(at(10))) == ["one"]
    api.add(at(5), "same instant, other payload")
    api.add(at(5), "one", iccid="8988280666000000002")  # same payload, other device
    assert sorted(payloads(poller.poll(at(20)))) == ["one", "same instant, other payload"]
    assert payloads(poller.poll(at(30))) == []


def test_identical_records_at_the_boundary_are_counted_not_merged(api, harness):
    api.add(at(5), "twin")
    api.add(at(5), "twin")
    poller = harness(at(0))
    assert payloads(poller.poll(at(10))) == ["twin", "twin"]
    assert payloads(poller.poll(at(20))) == []
    api.add(at(5), "twin")  # a third identical uplink shows up late
    assert payloads(poller.poll(at(30))) == ["twin"]
    assert payloads(poller.poll(at(40))) == []


def test_seven_digit_precision_at_the_boundary(api, harness):
    api.add(at(5), "t")
    poller = harness(at(0))
    assert payloads(poller.poll(at(10))) == ["t"]
    api.add(at(5, extra_ticks=1), "t+100ns")
    api.add(at(5, extra_ticks=-1), "t-100ns, before the window")
    assert payloads(poller.poll(at(20))) == ["t+100ns"]
    assert json.loads(api.requests[1]["body"])["StartTime"] == at(5)


def test_malformed_records_are_skipped_with_a_warning(api, harness, caplog):
    api.add(at(1), "good")
    for bad in ({"Timestamp": at(2), "Payload": 5, "ICCID": ICCID}, {"Timestamp": "yesterday", "Payload": "x", "ICCID": ICCID},
                {"Timestamp": at(2), "Payload": "x", "ICCID": None, "Topic": None}, "not a record",
                {"Timestamp": at(2), "Payload": "x", "ICCID": 8988}):
        api.add_raw(bad)
    poller = harness(at(0))
    with caplog.at_level("WARNING", logger="monoz.link.raw_data"):
        assert payloads(poller.poll(at(10))) == ["good"]
    assert "skipped 5 malformed record(s)" in caplog.text


def test_kind_failed_polls_failed_data(api, harness):
    api.add(at(1), "delivered")
    api.add(at(2), "undelivered", endpoint="FailedData")
    poller = harness(at(0), kind="failed")
    assert payloads(poller.poll(at(10))) == ["undelivered"]
    assert api.requests[0]["path"] == f"/api/v1/{ORG}/FailedData"


# -- the running source: interval, errors, checkpoint ---------------------------------------


def start_source(raw_data: Any, args: dict[str, Any]) -> SourceRunner:
    return SourceRunner(raw_data, args, wait_listening=False).__enter__()


def test_errors_are_logged_without_the_key_and_the_same_window_is_retried(raw_data, api):
    api.add(stamp(30), "kept for later")
    api.fail_next(401, 500, 503, "drop", "notjson", 400)
    source = start_source(raw_data, args_for(api, interval=0.05, lookback="1m"))
    try:
        assert source.next_event(timeout=30)["monoz"]["payload"] == "kept for later"
        requests_seen = api.wait_requests(7)
        starts = {json.loads(request["body"])["StartTime"] for request in requests_seen[:7]}
        assert len(starts) == 1  # every failed poll left the window where it was
        logs = source.logs.wait_for("polling", count=6)
        assert any("HTTP 401 (check org_id and api_key): injected 401" in line for line in logs)
        assert any("HTTP 500" in line for line in logs) and any("HTTP 503" in line for line in logs)
        assert any("not JSON" in line for line in logs) and any("HTTP 400" in line for line in logs)
        assert any("ServerDisconnectedError" in line or "ClientOSError" in line for line in logs)
        assert not source.finished.is_set()
        assert_no_secret(source.logs.text())
    finally:
        source.stop()
    assert source.error is None


def test_validate_certs(raw_data, tmp_path):
    import ssl

    from eda_support import self_signed_cert

    certfile, keyfile = self_signed_cert(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(certfile), str(keyfile))
    with FakeApi(ORG, API_KEY, ssl_context=context) as tls_api:
        tls_api.add(stamp(30), "over TLS")
        source = start_source(raw_data, args_for(tls_api, interval=0.05, lookback="1m"))
        try:
            assert "certificate verify failed" in source.logs.wait_for("polling", count=1)[0]
        finally:
            source.stop()
        source = start_source(raw_data, args_for(tls_api, interval=0.05, lookback="1m", validate_certs=False))
        try:
            assert source.next_event(timeout=30)["monoz"]["payload"] == "over TLS"
        finally:
            source.stop()


def test_no_answer_within_timeout_is_logged_and_retried(raw_data, api):
    api.add(stamp(30), "after the hang")
    api.fail_next("hang")
    source = start_source(raw_data, args_for(api, interval=0.05, lookback="1m", timeout=0.3))
    try:
        assert source.next_event(timeout=30)["monoz"]["payload"] == "after the hang"
        assert source.logs.wait_for("no answer within 0.3 s")
    finally:
        source.stop()


def test_unreachable_api_never_stops_the_source(raw_data):
    from eda_support import free_port

    source = start_source(raw_data, {"org_id": ORG, "api_key": API_KEY, "api_url": f"http://127.0.0.1:{free_port()}/api/v1",
                                     "interval": 0.05})
    try:
        lines = source.logs.wait_for("polling", count=3)
        assert all("ClientConnectorError" in line or "Cannot connect" in line for line in lines)
        assert not source.finished.is_set()
        assert_no_secret(source.logs.text())
    finally:
        source.stop()
    assert source.error is None


def test_wrong_key_is_a_401_in_the_log_and_the_key_appears_nowhere(raw_data, api):
    source = start_source(raw_data, {**args_for(api, interval=0.05), "api_key": API_KEY + "-wrong"})
    try:
        line = source.logs.wait_for("HTTP 401", count=2)[0]
        assert "check org_id and api_key" in line
        assert API_KEY not in source.logs.text() and "-wrong" not in source.logs.text()
    finally:
        source.stop()


def test_checkpoint_resumes_without_replaying(raw_data, api, tmp_path):
    checkpoint = tmp_path / "state" / "monoz.json"
    checkpoint.parent.mkdir()
    for index in range(3):
        api.add(stamp(60 - index), f"r{index}", iccid=f"898828066600000000{index}")
    source = start_source(raw_data, args_for(api, interval=0.05, lookback="2m", checkpoint=str(checkpoint)))
    try:
        assert payloads([source.next_event() for _ in range(3)]) == ["r0", "r1", "r2"]
        api.wait_requests(len(api.requests) + 1)
    finally:
        source.stop()
    saved = json.loads(checkpoint.read_text())
    assert saved["cursor"] == api.records["RawData"][2]["Timestamp"]  # the newest record emitted
    assert saved["org_id"] == ORG and saved["kind"] == "raw"
    text = checkpoint.read_text()
    assert "r0" not in text and "r2" not in text  # digests, not payloads
    assert_no_secret(text)
    assert os.listdir(checkpoint.parent) == ["monoz.json"]  # no temporary file left behind

    api.add(api.records["RawData"][2]["Timestamp"], "r2", iccid="8988280666000000009")  # same instant, other device
    api.add(stamp(10), "r3")
    before = len(api.requests)
    source = start_source(raw_data, args_for(api, interval=0.05, lookback="3d", checkpoint=str(checkpoint)))
    try:
        got = [source.next_event(), source.next_event()]
        api.wait_requests(before + 3)  # two more full polls after the first
        got += source.drain()
    finally:
        source.stop()
    assert sorted(payloads(got)) == ["r2", "r3"]
    assert {event["monoz"]["iccid"] for event in got if event["monoz"]["payload"] == "r2"} == {"8988280666000000009"}
    assert json.loads(api.requests[before]["body"])["StartTime"] == api.records["RawData"][2]["Timestamp"]
    assert "resuming from checkpoint" in source.logs.text()


def write_checkpoint(path: Path, **fields: Any) -> None:
    data = {"version": 1, "org_id": ORG, "kind": "raw", "cursor": "x", "cursor_ns": 0, "boundary": {}, **fields}
    path.write_text(json.dumps(data))


@pytest.mark.parametrize(("content", "message"), [
    ({"org_id": "OTHER"}, "belongs to org_id 'OTHER' kind 'raw', not 'DEMO' 'raw'"),
    ({"kind": "failed"}, "belongs to org_id 'DEMO' kind 'failed'"),
    ({"version": 7}, "is not a checkpoint of this source"),
    ({"cursor_ns": "soon"}, "is damaged"),
    ({"boundary": {"abc": -1}}, "is damaged"),
    (None, "cannot be read"),
])
def test_a_foreign_or_damaged_checkpoint_stops_the_source_with_a_clear_message(raw_data, api, tmp_path, content, message):
    checkpoint = tmp_path / "checkpoint.json"
    if content is None:
        checkpoint.write_text("{half")
    else:
        write_checkpoint(checkpoint, **content)
    source = SourceRunner(raw_data, args_for(api, checkpoint=str(checkpoint)), wait_listening=False)
    with source:
        error = source.wait_finished()
    assert isinstance(error, raw_data.RawDataArgumentError)
    assert str(error).startswith(f"monoz.link.raw_data: checkpoint {checkpoint}") and message in str(error)
    assert api.requests == []


# -- arguments ----------------------------------------------------------------------------------


def test_connection_arguments_fall_back_to_the_environment(raw_data, monkeypatch):
    monkeypatch.setenv("MONOZ_ORG_ID", "ENVORG")
    monkeypatch.setenv("MONOZ_API_KEY", API_KEY)
    monkeypatch.setenv("MONOZ_API_URL", "http://127.0.0.1:1/api/v1/")
    settings = raw_data.Settings({"interval": "4h"})
    assert (settings.org_id, settings.api_key, settings.api_url) == ("ENVORG", API_KEY, "http://127.0.0.1:1/api/v1")
    assert settings.url == "http://127.0.0.1:1/api/v1/ENVORG/RawData"
    assert (settings.interval, settings.lookback) == (14400.0, 14400.0)
    assert API_KEY not in repr(settings)


def test_defaults(raw_data, monkeypatch):
    for name in ("MONOZ_ORG_ID", "MONOZ_API_KEY", "MONOZ_API_URL"):
        monkeypatch.delenv(name, raising=False)
    settings = raw_data.Settings({"org_id": "A/B", "api_key": API_KEY})
    assert settings.url == "https://link.monoz.io/api/v1/A%2FB/RawData"
    assert (settings.interval, settings.lookback, settings.timeout, settings.validate_certs) == (14400.0, 14400.0, 30.0, True)


BAD_ARGUMENTS = {
    "no org": ({"api_key": API_KEY}, "missing org_id (or the MONOZ_ORG_ID environment variable)"),
    "no key": ({"org_id": ORG}, "missing api_key (or the MONOZ_API_KEY environment variable)"),
    "kind": ({"kind": "all"}, "kind must be raw or failed, got 'all'"),
    "interval words": ({"interval": "often"}, "interval must be seconds or a duration such as 90s, 30m, 4h or 1d"),
    "interval zero": ({"interval": 0}, "interval must be from 0.01 s to 366 days"),
    "lookback bool": ({"lookback": True}, "lookback must be seconds or a duration"),
    "timeout": ({"timeout": "slow"}, "timeout must be a number of seconds above 0"),
    "validate_certs": ({"validate_certs": "sometimes"}, "validate_certs must be a boolean"),
    "api_url": ({"api_url": "ftp://x"}, "api_url must start with http:// or https://"),
    "typo": ({"intervall": 5}, "unknown argument(s) intervall"),
}


@pytest.mark.parametrize("case", sorted(BAD_ARGUMENTS))
def test_bad_arguments_have_a_clear_message(raw_data, monkeypatch, case):
    for name in ("MONOZ_ORG_ID", "MONOZ_API_KEY", "MONOZ_API_URL"):
        monkeypatch.delenv(name, raising=False)
    extra, message = BAD_ARGUMENTS[case]
    base = {} if case in ("no org", "no key") else {"org_id": ORG, "api_key": API_KEY}
    with pytest.raises(raw_data.RawDataArgumentError) as raised:
        raw_data.Settings({**base, **extra})
    assert str(raised.value) == f"monoz.link.raw_data: {message}" or message in str(raised.value)
    assert_no_secret(str(raised.value))


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), (90, 90), ("90s", 90), ("30m", 1800), ("4h", 14400),
                                               ("1d", 86400), ("1.5h", 5400), (2.5, 2.5)])
def test_durations(raw_data, text, seconds):
    assert raw_data.parse_duration(text, "interval") == seconds


def test_timestamps_keep_seven_digits(raw_data):
    text = "2024-03-11T04:19:55.5799558Z"
    assert raw_data.format_ns(raw_data.timestamp_ns(text)) == text
    assert raw_data.timestamp_ns("2024-03-11T06:19:55.5799558+02:00") == raw_data.timestamp_ns(text)
    assert raw_data.timestamp_ns(text) - raw_data.timestamp_ns("2024-03-11T04:19:55.5799557Z") == 100
    assert ticks(text) * 100 == raw_data.timestamp_ns(text)
