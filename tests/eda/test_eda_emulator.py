"""Both sources against the Monoz Link emulator: real MQTT uplinks, real webhook pushes, real RawData.

A simulated device publishes over MQTT (the emulator's control route); the
emulator stores the uplink and pushes it, the way Monoz Link does, to the
webhook source. The raw_data source reads the same uplinks back from RawData,
and from FailedData those the webhook refused.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import AUTH_HEADERS
from eda_support import API_KEY, ORG, TOKEN, Harness, SourceRunner, assert_event_well_formed, assert_no_secret

ICCIDS = [f"89882806660{index:08d}" for index in range(20)]


def start(start_webhook: Any, emulator: Any, auth: str = "bearer", use_topic: bool = False, **args: Any) -> SourceRunner:
    source = start_webhook(auth, **args)
    emulator.set_webhook(source.url + "/", headers=AUTH_HEADERS[auth], use_topic=use_topic)
    return source


@pytest.mark.parametrize("auth", ["bearer", "basic", "header"])
def test_an_mqtt_uplink_reaches_the_source_as_one_event(start_webhook, emulator, auth):
    source = start(start_webhook, emulator, auth)
    record = emulator.uplink(ICCIDS[0], json.dumps({"config_version": 4}), topic="status")
    event = source.next_event(timeout=30)
    assert event == {"monoz": {"iccid": ICCIDS[0], "topic": None, "timestamp": record["Timestamp"],
                               "payload": '{"config_version": 4}', "payload_json": {"config_version": 4}}}
    state = emulator.webhook(wait_idle=True)
    assert (state["delivered_packets"], state["failures"]) == (1, 0)
    assert_no_secret(source.logs.text())


def test_with_the_topic_option_the_iccid_comes_from_the_topic(start_webhook, emulator):
    source = start(start_webhook, emulator, use_topic=True)
    record = emulator.uplink(ICCIDS[1], "A1B2", topic="gps")
    data = assert_event_well_formed(source.next_event(timeout=30))
    assert (data["iccid"], data["topic"], data["payload"]) == (ICCIDS[1], record["Topic"], "A1B2")
    assert "payload_json" not in data


def test_uplinks_of_many_devices_arrive_once_each(start_webhook, emulator):
    source = start(start_webhook, emulator)
    records = emulator.uplinks("burst", iccids=ICCIDS)
    events = [assert_event_well_formed(source.next_event(timeout=30)) for _ in records]
    assert sorted(data["iccid"] for data in events) == sorted(ICCIDS)
    state = emulator.webhook(wait_idle=True)
    assert state["delivered_packets"] == len(ICCIDS) and state["failures"] == 0
    assert state["delivered_batches"] < len(ICCIDS)  # arrays of several packets were accepted


def test_refused_pushes_go_to_failed_data_and_raw_data_recovers_them(start_webhook, emulator, raw_data):
    source = start_webhook("bearer")
    emulator.set_webhook(source.url + "/", headers={"Authorization": "Bearer not-the-token"}, block_after=2)
    started = raw_data.format_ns(raw_data.timestamp_ns(emulator.uplink(ICCIDS[2], "probe")["Timestamp"]) - 1000)
    emulator.webhook(wait_idle=True)
    sent = [emulator.uplink(ICCIDS[2], f"lost-{index}")["Timestamp"] for index in range(3)]
    state = emulator.webhook(wait_idle=True)
    assert state["blocked"] and state["delivered_packets"] == 0 and state["failed_data"] == 4
    assert source.logs.wait_for("answered 401", count=2)
    assert source.drain() == []  # the source emitted nothing for refused requests
    # FailedData has them; raw_data with kind failed turns them into events after all
    poller = Harness(raw_data, {"org_id": ORG, "api_key": API_KEY, "api_url": emulator.api_url, "kind": "failed"}, started)
    try:
        events = poller.poll()
    finally:
        poller.close()
    assert [event["monoz"]["payload"] for event in events] == ["probe", "lost-0", "lost-1", "lost-2"]
    assert [event["monoz"]["timestamp"] for event in events[1:]] == sent
    assert_no_secret(source.logs.text())


def test_raw_data_windows_against_the_emulator(emulator, raw_data):
    first = emulator.uplink(ICCIDS[3], "one")["Timestamp"]
    start = raw_data.format_ns(raw_data.timestamp_ns(first) - 1000)
    emulator.uplink(ICCIDS[4], '{"alarm": true}', topic="status")
    poller = Harness(raw_data, {"org_id": ORG, "api_key": API_KEY, "api_url": emulator.api_url}, start)
    try:
        events = poller.poll()
        assert [event["monoz"]["payload"] for event in events] == ["one", '{"alarm": true}']
        assert events[1]["monoz"]["payload_json"] == {"alarm": True}
        assert events[1]["monoz"]["topic"] == f"/{ORG}/{ICCIDS[4]}/status"
        newest = events[1]["monoz"]["timestamp"]
        assert poller.poll() == []  # the emulator returns the newest record again; it is not emitted twice
        emulator.uplink(ICCIDS[3], "two")
        assert [event["monoz"]["payload"] for event in poller.poll()] == ["two"]
        assert poller.position.cursor > raw_data.timestamp_ns(newest)
    finally:
        poller.close()


def test_raw_data_checkpoint_resume_against_the_emulator(emulator, raw_data, tmp_path):
    checkpoint = tmp_path / "raw.json"
    args = {"org_id": ORG, "api_key": API_KEY, "api_url": emulator.api_url, "interval": 0.2, "lookback": "1m",
            "checkpoint": str(checkpoint)}
    emulator.uplink(ICCIDS[5], "before restart")
    with SourceRunner(raw_data, args, wait_listening=False) as source:
        assert source.next_event(timeout=30)["monoz"]["payload"] == "before restart"
        source.logs.wait_for("next window from", count=2)
    emulator.uplink(ICCIDS[5], "after restart")
    with SourceRunner(raw_data, args, wait_listening=False) as source:
        assert source.next_event(timeout=30)["monoz"]["payload"] == "after restart"
        source.logs.wait_for("next window from", count=3)
        assert source.drain() == []  # "before restart" was not replayed, "after restart" came once
        assert "resuming from checkpoint" in source.logs.text()


def test_raw_data_with_a_wrong_key_logs_401_without_the_key(emulator, raw_data):
    args = {"org_id": ORG, "api_key": TOKEN, "api_url": emulator.api_url, "interval": 0.05}
    with SourceRunner(raw_data, args, wait_listening=False) as source:
        line = source.logs.wait_for("HTTP 401", count=2)[0]
        assert not source.finished.is_set()
    assert "check org_id and api_key" in line
    assert_no_secret(source.logs.text())
