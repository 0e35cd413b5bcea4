# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""MonozClient's endpoints beyond Publish/Message: exact requests, the shape of reads, errors and retries."""

from __future__ import annotations

import json

import pytest
import requests

from ansible_collections.monoz.link.plugins.module_utils._api_client import (
    MonozAPIError,
    MonozAuthError,
    MonozClient,
    MonozResponseError,
    MonozTransportError,
)
from ansible_collections.monoz.link.tests.unit.fakes import (
    API_KEY,
    API_URL,
    ICCID,
    ORG_ID,
    FakeSession,
    SleepRecorder,
    WireTransport,
    api_error,
    make_response,
)

ORG_URL = f"{API_URL}/{ORG_ID}"


def make_client(session, **kwargs) -> MonozClient:
    kwargs.setdefault("sleep", SleepRecorder())
    return MonozClient(API_URL, ORG_ID, API_KEY, session=session, **kwargs)


def answer(data=None, message="FetchSuccess"):
    body = {"StatusCode": 200, "Message": message}
    if data is not None:
        body["Data"] = data
    return make_response(200, body)


# --- exact requests on the wire ------------------------------------------------

@pytest.mark.parametrize("call, method, url, body, reply", [
    (lambda c: c.device_detail(ICCID), "GET", f"{ORG_URL}/Device/Sim/Detail/{ICCID}", None, answer({"Name": "x"})),
    (lambda c: c.sim_enabled(ICCID), "GET", f"{ORG_URL}/Sim/Enable/{ICCID}", None, answer({"Enabled": True})),
    (lambda c: c.set_sim_enabled(ICCID, False), "PUT", f"{ORG_URL}/Sim/Enable", {"ICCID": ICCID, "Enable": False},
     answer(message="UpdateSuccess")),
    (lambda c: c.set_sim_enabled(ICCID, True), "PUT", f"{ORG_URL}/Sim/Enable", {"ICCID": ICCID, "Enable": True},
     answer(message="UpdateSuccess")),
    (lambda c: c.reset_sim(ICCID), "PUT", f"{ORG_URL}/Sim/Reset", {"ICCID": ICCID}, answer(message="UpdateSuccess")),
    (lambda c: c.data("raw", "2024-03-11T00:00:00.000Z", "2024-03-11T04:00:00.000Z"), "POST", f"{ORG_URL}/RawData",
     {"StartTime": "2024-03-11T00:00:00.000Z", "EndTime": "2024-03-11T04:00:00.000Z"}, answer([])),
    (lambda c: c.data("failed", "2024-03-11T00:00:00.000Z", "2024-03-11T04:00:00.000Z"), "POST",
     f"{ORG_URL}/FailedData", {"StartTime": "2024-03-11T00:00:00.000Z", "EndTime": "2024-03-11T04:00:00.000Z"},
     answer([])),
])
def test_each_endpoint_sends_exactly_its_method_url_headers_and_body(call, method, url, body, reply, monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    client = MonozClient(API_URL, ORG_ID, API_KEY, timeout=9.0, sleep=SleepRecorder())
    with WireTransport(reply) as wire:
        call(client)
    (sent,) = wire.requests
    assert (sent.method, sent.url) == (method, url)
    assert sent.headers["X-API-Key"] == API_KEY
    assert sent.headers["Content-Type"] == "application/json"
    expected = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    assert (sent.body or b"") == expected
    assert sent.kwargs["timeout"] == 9.0 and sent.kwargs["verify"] is True


def test_org_id_is_url_quoted_for_every_endpoint():
    session = FakeSession(answer({"Enabled": False}))
    MonozClient(API_URL, "my org/x", API_KEY, session=session).sim_enabled(ICCID)
    assert session.calls[0].url == f"{API_URL}/my%20org%2Fx/Sim/Enable/{ICCID}"
    assert session.calls[0].method == "GET"


# --- what reads return ------------------------------------------------------------

def test_device_detail_returns_the_data_object():
    data = {"Name": "pump", "ICCID": ICCID, "Status": 1}
    result = make_client(FakeSession(answer(data))).device_detail(ICCID)
    assert (result.status_code, result.data, result.attempts) == (200, data, 1)


@pytest.mark.parametrize("enabled", [True, False])
def test_sim_enabled_returns_the_boolean(enabled):
    assert make_client(FakeSession(answer({"Enabled": enabled}))).sim_enabled(ICCID).data is enabled


def test_data_returns_the_records_and_null_data_is_no_records():
    records = [{"Timestamp": "2024-03-11T04:19:55.5799558Z", "Payload": "x", "ICCID": ICCID, "Topic": "t"}]
    assert make_client(FakeSession(answer(records))).data("raw", "a", "b").data == records
    assert make_client(FakeSession(answer())).data("raw", "a", "b").data == []


@pytest.mark.parametrize("call, data, what", [
    (lambda c: c.device_detail(ICCID), None, "no Data object"),
    (lambda c: c.device_detail(ICCID), [1], "no Data object"),
    (lambda c: c.sim_enabled(ICCID), {"Enabled": "true"}, "no boolean Data.Enabled"),
    (lambda c: c.sim_enabled(ICCID), {}, "no boolean Data.Enabled"),
    (lambda c: c.sim_enabled(ICCID), None, "no boolean Data.Enabled"),
    (lambda c: c.data("raw", "a", "b"), {"Timestamp": "x"}, "Data is not a list of records"),
    (lambda c: c.data("raw", "a", "b"), ["x"], "Data is not a list of records"),
])
def test_a_200_without_the_documented_data_is_a_response_error_not_retried(call, data, what):
    session = FakeSession(answer(data))
    with pytest.raises(MonozResponseError) as info:
        call(make_client(session, retries=3))
    assert what in info.value.message
    assert info.value.message.startswith("HTTP 200 OK for ")
    assert info.value.status_code == 200
    assert len(session.calls) == 1


# --- errors name the subject --------------------------------------------------------

@pytest.mark.parametrize("call, subject", [
    (lambda c: c.device_detail(ICCID), f"ICCID {ICCID}"),
    (lambda c: c.sim_enabled(ICCID), f"ICCID {ICCID}"),
    (lambda c: c.set_sim_enabled(ICCID, True), f"ICCID {ICCID}"),
    (lambda c: c.reset_sim(ICCID), f"ICCID {ICCID}"),
    (lambda c: c.data("raw", "a", "b"), "RawData"),
    (lambda c: c.data("failed", "a", "b"), "FailedData"),
])
def test_api_errors_name_status_subject_and_the_api_message(call, subject):
    with pytest.raises(MonozAPIError) as info:
        call(make_client(FakeSession(api_error(404, "ICCID not found"))))
    assert info.value.message == f"HTTP 404 Not Found for {subject}: ICCID not found"


def test_401_on_a_read_is_an_auth_error():
    with pytest.raises(MonozAuthError):
        make_client(FakeSession(api_error(401, "Unauthorized"))).device_detail(ICCID)


# --- retries ------------------------------------------------------------------------

def test_reset_after_a_500_is_never_retried():
    session = FakeSession(api_error(500, "reset failed"))
    with pytest.raises(MonozAPIError) as info:
        make_client(session, retries=5).reset_sim(ICCID)
    assert len(session.calls) == 1
    assert info.value.message == f"HTTP 500 Internal Server Error for ICCID {ICCID}: reset failed"


def test_reset_read_timeout_is_not_retried_and_says_the_reset_may_have_started():
    session = FakeSession(requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(MonozTransportError) as info:
        make_client(session, retries=5).reset_sim(ICCID)
    assert len(session.calls) == 1
    assert "not retried because the reset may have started" in info.value.message


def test_sim_change_read_timeout_says_the_sim_may_have_been_switched():
    session = FakeSession(requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(MonozTransportError, match="the SIM may have been switched"):
        make_client(session).set_sim_enabled(ICCID, False)


def test_read_timeout_on_a_read_is_not_retried_either():
    session = FakeSession(requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(MonozTransportError, match="not retried"):
        make_client(session, retries=5).device_detail(ICCID)
    assert len(session.calls) == 1


@pytest.mark.parametrize("fault", [
    lambda: api_error(503, "busy"),
    lambda: make_response(429, {"Message": "slow"}, headers={"Retry-After": "2"}),
    lambda: requests.exceptions.ConnectionError("refused"),
])
def test_transient_faults_are_retried_for_every_endpoint(fault):
    session = FakeSession(fault(), fault(), answer(message="UpdateSuccess"))
    result = make_client(session, retries=3).reset_sim(ICCID)
    assert result.attempts == 3
    assert [call.method for call in session.calls] == ["PUT"] * 3
    assert len({call.data for call in session.calls}) == 1


def test_a_read_is_retried_with_the_retry_callback_naming_the_subject():
    events = []
    session = FakeSession(api_error(502, "gateway"), answer({"Enabled": True}))
    client = make_client(session, on_retry=lambda subject, attempt, reason, delay: events.append((subject, reason)))
    assert client.sim_enabled(ICCID).data is True
    assert events == [(f"ICCID {ICCID}", "HTTP 502 Bad Gateway")]


def test_before_attempt_runs_for_every_attempt_of_every_endpoint():
    count = []
    session = FakeSession(api_error(503, "busy"), answer({"Enabled": True}), answer(message="UpdateSuccess"))
    client = make_client(session, before_attempt=lambda: count.append(1))
    client.sim_enabled(ICCID)
    client.set_sim_enabled(ICCID, False)
    assert len(count) == 3


def test_key_echoed_by_a_read_error_is_redacted():
    session = FakeSession(api_error(400, f"bad key {API_KEY}"))
    with pytest.raises(MonozAPIError) as info:
        make_client(session).data("raw", "a", "b")
    assert API_KEY not in info.value.message
    assert API_KEY not in json.dumps(info.value.result.response)


@pytest.mark.parametrize("key", ["k3y-with-newline\n", " k3y-leading-space", "k3y\r\nX-Other: 1", "k3y\x00nul"])
def test_a_key_no_header_can_carry_is_never_sent_nor_shown(key):
    client = MonozClient(API_URL, ORG_ID, key, sleep=SleepRecorder())
    with WireTransport() as wire:
        with pytest.raises(MonozTransportError) as info:
            client.sim_enabled(ICCID)
    assert wire.requests == []
    assert info.value.message.startswith(f"Request for ICCID {ICCID} not sent: the api_key cannot be sent")
    assert "k3y" not in info.value.message
