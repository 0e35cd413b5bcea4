"""The webhook integration: the emulator pushes uplinks to a URL the way Monoz Link does.

A small aiohttp receiver (emulator_test_support.WebhookReceiver) stands for
the customer's server; each test starts and stops it. Batching, headers,
retries on no answer, no retry on an error answer, blocking after repeated
failures and FailedData are asserted on what the receiver got and on the
emulator's FailedData endpoint. Waits are blocking (the receiver's condition,
`webhook(wait_idle=True)`), never sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from emulator_test_support import WIDE_WINDOW, WebhookReceiver, api, assert_ok
from monoz_emulator.testing import EmulatorError, EmulatorProcess, generated_iccid

I0, I1 = generated_iccid(0), generated_iccid(1)
TOKEN = "Bearer hook-T0ken-5ecret-81f2"


@pytest.fixture(scope="module")
def emu() -> Iterator[EmulatorProcess]:
    with EmulatorProcess(devices=12) as proc:
        yield proc
        assert "Traceback" not in proc.stderr_text(), proc.stderr_text()
        assert TOKEN not in proc.stderr_text()


@pytest.fixture
def hook(emu: EmulatorProcess) -> Iterator[WebhookReceiver]:
    emu.reset()
    with WebhookReceiver() as receiver:
        emu.set_webhook(receiver.url, headers={"Authorization": TOKEN, "X-Customer": "acme"})
        yield receiver
    emu.set_webhook(None)


def bodies(hook: WebhookReceiver) -> list[Any]:
    return [json.loads(entry["body"]) for entry in hook.requests]


def failed_data(emu: EmulatorProcess) -> list[dict[str, Any]]:
    return assert_ok(api(emu, "POST", "FailedData", WIDE_WINDOW), "FetchSuccess")


def test_single_packet_goes_as_object_with_headers(emu: EmulatorProcess, hook: WebhookReceiver) -> None:
    record = emu.uplink(I0, '{"config_version": 3}')
    [entry] = hook.wait_requests(1)
    assert json.loads(entry["body"]) == {"ICCID": I0, "Timestamp": record["Timestamp"],
                                         "Payload": '{"config_version": 3}'}
    assert list(json.loads(entry["body"])) == ["ICCID", "Timestamp", "Payload"]
    assert entry["headers"]["Authorization"] == TOKEN and entry["headers"]["X-Customer"] == "acme"
    assert entry["headers"]["Content-Type"] == "application/json"
    assert entry["path"] == "/hook"
    state = emu.webhook(wait_idle=True)
    assert state["delivered_packets"] == 1 and state["delivered_batches"] == 1 and state["failures"] == 0
    assert state["headers"] == {"Authorization": "********", "X-Customer": "********"}
    assert TOKEN not in json.dumps(state)


def test_burst_goes_in_batches_of_at_most_ten(emu: EmulatorProcess, hook: WebhookReceiver) -> None:
    records = emu.uplinks("burst")  # 13 devices publish at once
    assert len(records) == 13
    packets = hook.wait_packets(13)
    batches = bodies(hook)
    # A burst arrives within a second: it goes as 10 + 3, each batch an array.
    assert [len(b) for b in batches] == [10, 3]
    assert sorted(p["ICCID"] for p in packets) == sorted(r["ICCID"] for r in records)
    assert sorted(p["Timestamp"] for p in packets) == sorted(r["Timestamp"] for r in records)
    assert emu.webhook(wait_idle=True)["delivered_batches"] == 2


def test_use_topic_replaces_iccid(emu: EmulatorProcess, hook: WebhookReceiver) -> None:
    emu.set_webhook(hook.url, use_topic=True)
    emu.uplink(I1, "t", topic="status")
    [entry] = hook.wait_requests(1)
    body = json.loads(entry["body"])
    assert set(body) == {"Topic", "Timestamp", "Payload"} and body["Topic"] == f"/DEMO/{I1}/status"
    assert "Authorization" not in entry["headers"]  # headers were replaced


def test_no_answer_is_retried_twice(emu: EmulatorProcess, hook: WebhookReceiver) -> None:
    emu.set_webhook(hook.url, timeout=0.3)
    hook.script = ["hang", "hang"]  # then 200
    emu.uplink(I0, "patience")
    requests_seen = hook.wait_requests(3)
    assert [r["answer"] for r in requests_seen] == ["hang", "hang", 200]
    assert len({r["body"] for r in requests_seen}) == 1  # the same packet each time
    state = emu.webhook(wait_idle=True)
    assert (state["attempts"], state["delivered_packets"], state["failures"]) == (3, 1, 0)
    assert failed_data(emu) == []


def test_three_timeouts_fail_the_push_into_failed_data(emu: EmulatorProcess, hook: WebhookReceiver) -> None:
    emu.set_webhook(hook.url, timeout=0.2)
    hook.script = ["hang", "hang", "hang"]
    record = emu.uplink(I0, "lost-in-transit")
    state = emu.webhook(wait_idle=True)
    assert len(hook.requests) == 3
    assert (state["attempts"], state["failures"], state["failed_data"], state["blocked"]) == (3, 1, 1, False)
    assert "no answer" in state["last_error"]
    assert failed_data(emu) == [record]


def test_error_answer_is_not_retried(emu: EmulatorProcess, hook: WebhookReceiver) -> None:
    hook.script = [500]
    record = emu.uplink(I0, "refused")
    state = emu.webhook(wait_idle=True)
    assert [r["answer"] for r in hook.requests] == [500]
    assert (state["attempts"], state["failures"], state["last_error"]) == (1, 1, "HTTP 500")
    assert failed_data(emu) == [record]
    hook.script = [401]
    emu.uplink(I0, "unauthorised")
    assert emu.webhook(wait_idle=True)["attempts"] == 2 and len(hook.requests) == 2


def test_blocked_after_consecutive_failures_until_unblocked(emu: EmulatorProcess, hook: WebhookReceiver) -> None:
    emu.set_webhook(hook.url, block_after=2)
    hook.script = [503, 200, 503, 503]
    first = emu.uplink(I0, "f1")
    assert emu.webhook(wait_idle=True)["consecutive_failures"] == 1
    emu.uplink(I0, "ok")  # a success resets the count
    assert emu.webhook(wait_idle=True)["consecutive_failures"] == 0
    second = emu.uplink(I0, "f2")
    emu.webhook(wait_idle=True)
    third = emu.uplink(I0, "f3")
    state = emu.webhook(wait_idle=True)
    assert state["blocked"] is True and state["failures"] == 3
    # Blocked: nothing is pushed, everything goes to FailedData.
    while_blocked = emu.uplink(I1, "while-blocked")
    state = emu.webhook(wait_idle=True)
    assert len(hook.requests) == 4 and state["failed_data"] == 4
    assert failed_data(emu) == [while_blocked, third, second, first]
    # RawData still has every uplink.
    assert len(assert_ok(api(emu, "POST", "RawData", WIDE_WINDOW), "FetchSuccess")) == 5
    assert emu.unblock_webhook()["blocked"] is False
    emu.uplink(I1, "after-unblock")
    packets = hook.wait_packets(2)
    assert [p["Payload"] for p in packets] == ["ok", "after-unblock"]


def test_unreachable_webhook_counts_as_no_answer(emu: EmulatorProcess) -> None:
    emu.reset()
    with WebhookReceiver() as gone:
        url = gone.url
    emu.set_webhook(url, timeout=2, block_after=1)  # nothing listens there any more
    try:
        record = emu.uplink(I0, "nobody-home")
        state = emu.webhook(wait_idle=True)
        assert (state["attempts"], state["failures"], state["blocked"]) == (3, 1, True)
        assert failed_data(emu) == [record]
    finally:
        emu.set_webhook(None)
        emu.unblock_webhook()


def test_no_webhook_no_failed_data(emu: EmulatorProcess) -> None:
    emu.reset()
    emu.uplink(I0, "quiet")
    state = emu.webhook(wait_idle=True)
    assert state["url"] is None and state["attempts"] == 0
    assert failed_data(emu) == []


@pytest.mark.parametrize("body,fragment", [
    ({"url": "ftp://x/"}, "is not an http"),
    ({"url": "http://"}, "is not an http"),
    ({"url": 5}, "url must be a string"),
    ({"url": "http://x/", "headers": {"Bad Name": "v"}}, "not a valid HTTP header name"),
    ({"url": "http://x/", "headers": {"X-A": "v\r\nInjected: 1"}}, "without CR or LF"),
    ({"url": "http://x/", "headers": ["Authorization: x"]}, "headers must be an object"),
    ({"url": "http://x/", "use_topic": "yes"}, "use_topic must be a boolean"),
    ({"url": "http://x/", "timeout": 0}, "timeout must be a number"),
    ({"url": "http://x/", "block_after": 0}, "block_after must be an integer"),
    ({"url": "http://x/", "retries": 5}, "unknown webhook setting(s): retries"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_webhook_settings_validation(emu: EmulatorProcess, body: dict[str, Any], fragment: str) -> None:
    before = emu.webhook()
    with pytest.raises(EmulatorError, match="HTTP 400") as info:
        emu._call("PUT", "/webhook", body=body)
    assert fragment in str(info.value)
    assert emu.webhook() == before


def test_cli_webhook_options(tmp_path: Any) -> None:
    with WebhookReceiver() as receiver:
        args = ["--webhook-url", receiver.url, "--webhook-header", f"Authorization: {TOKEN}",
                "--webhook-header", "X-Api-Key: k2", "--webhook-timeout", "5", "--webhook-block-after", "3"]
        with EmulatorProcess(devices=1, extra_args=args) as proc:
            state = proc.webhook()
            assert (state["url"], state["timeout"], state["block_after"]) == (receiver.url, 5.0, 3)
            assert state["headers"] == {"Authorization": "********", "X-Api-Key": "********"}
            proc.uplink(I0, "from-cli")
            [entry] = receiver.wait_requests(1)
            assert entry["headers"]["Authorization"] == TOKEN and entry["headers"]["X-Api-Key"] == "k2"
            proc.reset()  # keeps the settings
            assert proc.webhook()["url"] == receiver.url and proc.webhook()["delivered_packets"] == 0
    for bad, fragment in ((["--webhook-url", "nope"], "is not an http"),
                          (["--webhook-header", TOKEN.replace(":", "")], "no ':'"),
                          (["--webhook-timeout", "0"], "--webhook-timeout must be > 0"),
                          (["--webhook-block-after", "0"], "--webhook-block-after must be >= 1")):
        with pytest.raises(EmulatorError, match=fragment) as info:
            with EmulatorProcess(devices=1, extra_args=bad):
                pass
        assert "5ecret" not in str(info.value)
