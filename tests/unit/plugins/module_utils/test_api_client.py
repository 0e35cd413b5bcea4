# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""MonozClient: the exact request, the error mapping and the retry policy."""

from __future__ import annotations

import json
import random
import time
from email.utils import formatdate

import pytest
import requests

from ansible_collections.monoz.link.plugins.module_utils._api_client import (
    BACKOFF_MAX_SECONDS,
    RETRY_AFTER_MAX_SECONDS,
    MonozAPIError,
    MonozAuthError,
    MonozClient,
    MonozTransportError,
    PublishResult,
    backoff_delay,
    parse_retry_after,
)
from ansible_collections.monoz.link.tests.unit.fakes import (
    API_KEY,
    API_URL,
    ICCID,
    ORG_ID,
    PUBLISH_URL,
    PUBLISHED,
    FakeSession,
    SleepRecorder,
    WireTransport,
    api_error,
    make_response,
    ok,
)

BODY = {"ICCID": ICCID, "Topic": "/config", "Message": '{"apn":"iot.example"}', "QoS": 1, "Format": 0}


def make_client(session, **kwargs) -> MonozClient:
    kwargs.setdefault("sleep", SleepRecorder())
    return MonozClient(kwargs.pop("api_url", API_URL), kwargs.pop("org_id", ORG_ID), kwargs.pop("api_key", API_KEY),
                       session=session, **kwargs)


def publish_error(client, body=None):
    with pytest.raises(Exception) as info:
        client.publish(BODY if body is None else body)
    return info.value


# --- the request -------------------------------------------------------------

def test_posts_once_to_org_publish_message_url():
    session = FakeSession(ok())
    make_client(session).publish(BODY)
    assert [call.url for call in session.calls] == [PUBLISH_URL]


def test_trailing_slash_on_api_url_is_not_doubled():
    session = FakeSession(ok())
    make_client(session, api_url=API_URL + "/").publish(BODY)
    assert session.calls[0].url == f"{API_URL}/{ORG_ID}/Publish/Message"


@pytest.mark.parametrize("org_id, quoted", [
    ("a/b", "a%2Fb"),
    ("my org", "my%20org"),
    ("x?y#z", "x%3Fy%23z"),
])
def test_org_id_is_url_quoted_into_the_path(org_id, quoted):
    session = FakeSession(ok())
    make_client(session, org_id=org_id).publish(BODY)
    assert session.calls[0].url == f"{API_URL}/{quoted}/Publish/Message"


def test_body_is_compact_json_with_non_ascii_kept_as_utf8():
    body = {"ICCID": ICCID, "Topic": "/café", "Message": "grüße ✓", "QoS": 0, "Format": 1}
    session = FakeSession(ok())
    make_client(session).publish(body)
    expected = ('{"ICCID":"8988280666000000001","Topic":"/café","Message":"grüße ✓","QoS":0,"Format":1}').encode()
    assert session.calls[0].data == expected


def test_ca_bundle_from_the_environment_is_read_once_and_used_for_verification(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/monoz/ca.pem")
    session = FakeSession(ok())
    make_client(session).publish(BODY)
    assert session.calls[0].kwargs["verify"] == "/etc/monoz/ca.pem"


def test_proxy_from_the_environment_is_used_and_no_proxy_bypasses_it(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    proxied = MonozClient(api_url="https://link.example.invalid/api/v1", org_id="mti", api_key="k")
    assert proxied._session.proxies.get("https") == "http://127.0.0.1:3128"
    monkeypatch.setenv("NO_PROXY", "link.example.invalid")
    direct = MonozClient(api_url="https://link.example.invalid/api/v1", org_id="mti", api_key="k")
    assert "https" not in direct._session.proxies


def test_proxy_reaches_the_transport(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = MonozClient(API_URL, ORG_ID, API_KEY, sleep=SleepRecorder())
    with WireTransport(ok()) as wire:
        client.publish(BODY)
    assert wire.requests[0].kwargs["proxies"].get("https") == "http://127.0.0.1:3128"


def test_netrc_credentials_do_not_replace_the_key(monkeypatch, tmp_path):
    (tmp_path / ".netrc").write_text("machine link.example.invalid login user password netrc-secret\n")
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("NETRC", str(tmp_path / ".netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    client = MonozClient(API_URL, ORG_ID, API_KEY, sleep=SleepRecorder())
    with WireTransport(ok()) as wire:
        client.publish(BODY)
    assert "Authorization" not in wire.requests[0].headers
    assert wire.requests[0].headers["X-API-Key"] == API_KEY


def test_redirects_are_not_followed_and_timeout_is_passed():
    session = FakeSession(ok())
    make_client(session, timeout=7.5).publish(BODY)
    assert session.calls[0].kwargs == {"timeout": 7.5, "allow_redirects": False, "verify": True}


def test_request_on_the_wire_has_exact_method_url_headers_and_body(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = MonozClient(API_URL, ORG_ID, API_KEY, timeout=12.0, sleep=SleepRecorder())
    with WireTransport(ok()) as wire:
        client.publish(BODY)
    assert len(wire.requests) == 1
    sent = wire.requests[0]
    assert sent.method == "POST"
    assert sent.url == PUBLISH_URL
    assert sent.headers["X-API-Key"] == API_KEY
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.body == json.dumps(BODY, separators=(",", ":")).encode()
    assert sent.kwargs["timeout"] == 12.0
    assert sent.kwargs["verify"] is True


def test_validate_certs_false_reaches_the_transport(monkeypatch):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    client = MonozClient(API_URL, ORG_ID, API_KEY, validate_certs=False, sleep=SleepRecorder())
    with WireTransport(ok()) as wire:
        client.publish(BODY)
    assert wire.requests[0].kwargs["verify"] is False


def test_validate_certs_false_wins_over_requests_ca_bundle_environment(monkeypatch):
    # requests lets REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a Session's
    # verify=False (psf/requests#3829); validate_certs=false must still mean
    # "do not verify" on hosts that export a CA bundle.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = MonozClient(API_URL, ORG_ID, API_KEY, validate_certs=False, sleep=SleepRecorder())
    with WireTransport(ok()) as wire:
        client.publish(BODY)
    assert wire.requests[0].kwargs["verify"] is False


def test_validate_certs_true_verifies(monkeypatch):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    client = MonozClient(API_URL, ORG_ID, API_KEY, validate_certs=True, sleep=SleepRecorder())
    with WireTransport(ok()) as wire:
        client.publish(BODY)
    assert wire.requests[0].kwargs["verify"] not in (False, None, "")


def test_connection_pool_holds_pool_size_connections():
    client = MonozClient(API_URL, ORG_ID, API_KEY, pool_size=32)
    assert client._session.adapter._pool_maxsize == 32


def test_redirect_on_the_wire_is_not_followed():
    redirect = make_response(302, text="moved", headers={"Location": "https://elsewhere.example.invalid/steal"})
    client = MonozClient(API_URL, ORG_ID, API_KEY, sleep=SleepRecorder())
    with WireTransport(redirect) as wire:
        with pytest.raises(MonozTransportError) as info:
            client.publish(BODY)
    assert len(wire.requests) == 1
    assert "302 Found" in info.value.message
    assert "https://elsewhere.example.invalid/steal" in info.value.message


# --- success -----------------------------------------------------------------

def test_200_with_error_key_is_success():
    result = make_client(FakeSession(ok())).publish(BODY)
    assert result == PublishResult(status_code=200, response=PUBLISHED, attempts=1)


def test_200_without_error_key_is_success():
    newer = {"StatusCode": 200, "Message": "MessagePublished"}
    result = make_client(FakeSession(make_response(200, newer))).publish(BODY)
    assert result == PublishResult(status_code=200, response=newer, attempts=1)


@pytest.mark.parametrize("text", ["<html>OK</html>", "", "[1, 2]"])
def test_200_whose_body_is_not_a_json_object_is_a_failure_not_retried(text):
    # A captive portal or a web server at a wrong api_url answers 200 too;
    # counting that as delivered would journal a message that never left.
    session = FakeSession(make_response(200, text=text))
    with pytest.raises(MonozTransportError, match="HTTP 200 for ICCID .* not the API's JSON.*check api_url") as caught:
        make_client(session, retries=3).publish(BODY)
    assert caught.value.attempts == 1
    assert len(session.calls) == 1


def test_200_with_error_true_is_still_success_because_status_decides():
    body = {"Error": True, "StatusCode": 200, "Message": "MessagePublished"}
    result = make_client(FakeSession(make_response(200, body))).publish(BODY)
    assert result.status_code == 200


# --- errors ------------------------------------------------------------------

@pytest.mark.parametrize("status, phrase, api_message", [
    (404, "404 Not Found", "ICCID not found"),
    (400, "400 Bad Request", "Invalid QoS"),
    (500, "500 Internal Server Error", "database unavailable"),
])
def test_error_status_raises_api_error_naming_status_iccid_and_api_message(status, phrase, api_message):
    client = make_client(FakeSession(api_error(status, api_message)))
    error = publish_error(client)
    assert error.__class__ is MonozAPIError
    assert error.message == f"HTTP {phrase} for ICCID {ICCID}: {api_message}"
    assert str(error) == error.message
    assert error.status_code == status
    assert error.result.response == {"Error": True, "StatusCode": status, "Message": api_message}
    assert error.attempts == 1


def test_401_raises_auth_error_naming_the_org():
    client = make_client(FakeSession(api_error(401, "Unauthorized")))
    error = publish_error(client)
    assert isinstance(error, MonozAuthError)
    assert error.status_code == 401
    assert error.message.startswith(f"HTTP 401 Unauthorized for ICCID {ICCID}: Unauthorized")
    assert repr(ORG_ID) in error.message


def test_non_json_error_body_is_quoted_as_a_whitespace_collapsed_snippet():
    html = "<html>\n  <body>Bad   Gateway\n</body></html>" + "x" * 1000
    client = make_client(FakeSession(make_response(404, text=html)))
    error = publish_error(client)
    assert "response was not JSON: '<html> <body>Bad Gateway </body></html>xxx" in error.message
    assert len(error.message) < 400


def test_empty_error_body_says_so():
    error = publish_error(make_client(FakeSession(make_response(404, text=""))))
    assert error.message == f"HTTP 404 Not Found for ICCID {ICCID}: response was not JSON: 'empty body'"


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_3xx_raises_transport_error_and_is_not_retried(status):
    session = FakeSession(make_response(status, headers={"Location": "https://other.example.invalid/"}))
    error = publish_error(make_client(session, retries=3))
    assert isinstance(error, MonozTransportError)
    assert "redirects are not followed" in error.message
    assert len(session.calls) == 1


# --- retries -----------------------------------------------------------------

def test_two_503_then_200_takes_three_attempts_and_two_sleeps():
    sleep = SleepRecorder()
    session = FakeSession(api_error(503, "busy"), api_error(503, "busy"), ok())
    result = make_client(session, sleep=sleep, retries=3).publish(BODY)
    assert result.attempts == 3
    assert result.status_code == 200
    assert len(session.calls) == 3
    assert len(sleep.delays) == 2
    # every attempt sends the very same bytes
    assert len({call.data for call in session.calls}) == 1


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors_are_retried(status):
    session = FakeSession(api_error(status, "later"), ok())
    assert make_client(session).publish(BODY).attempts == 2


def test_retry_budget_spent_raises_last_error_saying_it_stopped():
    session = FakeSession(*[api_error(503, "busy") for attempt in range(3)])
    error = publish_error(make_client(session, retries=2))
    assert isinstance(error, MonozAPIError)
    assert error.status_code == 503
    assert error.attempts == 3
    assert "stopping after 3 attempts" in error.message
    assert "stopping after 3 attempts" in str(error)
    assert len(session.calls) == 3


def test_retries_zero_means_exactly_one_attempt():
    sleep = SleepRecorder()
    session = FakeSession(api_error(503, "busy"))
    error = publish_error(make_client(session, retries=0, sleep=sleep))
    assert error.attempts == 1
    assert len(session.calls) == 1
    assert sleep.delays == []


def test_500_is_never_retried():
    session = FakeSession(api_error(500, "boom"))
    error = publish_error(make_client(session, retries=5))
    assert error.attempts == 1
    assert len(session.calls) == 1


def test_429_honours_retry_after_seconds():
    sleep = SleepRecorder()
    session = FakeSession(make_response(429, {"Message": "slow down"}, headers={"Retry-After": "7"}), ok())
    result = make_client(session, sleep=sleep).publish(BODY)
    assert result.attempts == 2
    assert sleep.delays == [7.0]


def test_429_honours_retry_after_http_date():
    sleep = SleepRecorder()
    when = formatdate(time.time() + 30, usegmt=True)
    session = FakeSession(make_response(429, {"Message": "slow down"}, headers={"Retry-After": when}), ok())
    make_client(session, sleep=sleep).publish(BODY)
    assert len(sleep.delays) == 1
    assert 28.0 <= sleep.delays[0] <= 30.0


def test_429_retry_after_is_clamped_to_120_seconds():
    sleep = SleepRecorder()
    session = FakeSession(make_response(429, {"Message": "slow down"}, headers={"Retry-After": "86400"}), ok())
    make_client(session, sleep=sleep).publish(BODY)
    assert sleep.delays == [RETRY_AFTER_MAX_SECONDS] == [120.0]


def test_429_without_retry_after_falls_back_to_backoff():
    sleep = SleepRecorder()
    session = FakeSession(api_error(429, "slow down"), ok())
    make_client(session, sleep=sleep).publish(BODY)
    assert len(sleep.delays) == 1
    assert 0.0 <= sleep.delays[0] <= 0.5


def test_connection_error_is_retried():
    session = FakeSession(requests.exceptions.ConnectionError("Connection refused"), ok())
    assert make_client(session).publish(BODY).attempts == 2


def test_connect_timeout_is_retried_because_nothing_was_sent():
    session = FakeSession(requests.exceptions.ConnectTimeout("connect timed out"), ok())
    assert make_client(session).publish(BODY).attempts == 2


def test_connection_errors_after_budget_raise_transport_error_stopping_after_n_attempts():
    session = FakeSession(*[requests.exceptions.ConnectionError("Connection refused") for attempt in range(4)])
    error = publish_error(make_client(session, retries=3))
    assert isinstance(error, MonozTransportError)
    assert error.attempts == 4
    assert "Connection refused" in error.message
    assert "stopping after 4 attempts" in error.message
    assert len(session.calls) == 4


def test_read_timeout_is_never_retried():
    session = FakeSession(requests.exceptions.ReadTimeout("read timed out"))
    error = publish_error(make_client(session, retries=3, timeout=5.0))
    assert isinstance(error, MonozTransportError)
    assert error.attempts == 1
    assert "not retried" in error.message
    assert len(session.calls) == 1


def test_certificate_verification_failure_is_not_retried():
    # SSLError subclasses ConnectionError in requests, but a bad certificate is
    # not a transient fault: retrying only delays the same failure.
    session = FakeSession(*[requests.exceptions.SSLError("CERTIFICATE_VERIFY_FAILED") for attempt in range(4)])
    error = publish_error(make_client(session, retries=3))
    assert isinstance(error, MonozTransportError)
    assert len(session.calls) == 1
    assert "CERTIFICATE_VERIFY_FAILED" in error.message


def test_other_request_exceptions_are_not_retried():
    session = FakeSession(requests.exceptions.ChunkedEncodingError("broken body"))
    error = publish_error(make_client(session, retries=3))
    assert isinstance(error, MonozTransportError)
    assert len(session.calls) == 1


def test_on_retry_is_called_before_each_pause_with_attempt_reason_and_delay():
    events = []
    sleep = SleepRecorder()
    session = FakeSession(api_error(503, "busy"), requests.exceptions.ConnectionError("reset"), ok())
    client = make_client(session, sleep=sleep, retries=3,
                         on_retry=lambda subject, attempt, reason, delay: events.append((subject, attempt, reason, delay)))
    client.publish(BODY)
    assert [event[:3] for event in events] == [
        (f"ICCID {ICCID}", 1, "HTTP 503 Service Unavailable"),
        (f"ICCID {ICCID}", 2, "connection error"),
    ]
    assert [event[3] for event in events] == sleep.delays


def test_on_retry_is_not_called_when_the_budget_is_spent():
    events = []
    session = FakeSession(api_error(503, "busy"), api_error(503, "busy"))
    client = make_client(session, retries=1, on_retry=lambda *args: events.append(args))
    publish_error(client)
    assert [event[1] for event in events] == [1]


def test_before_attempt_is_called_once_per_attempt():
    calls = []
    session = FakeSession(api_error(503, "busy"), api_error(502, "busy"), ok())

    def before_attempt():
        calls.append(len(session.calls))  # requests made so far

    make_client(session, before_attempt=before_attempt).publish(BODY)
    assert calls == [0, 1, 2]


# --- the key never leaks -----------------------------------------------------

def test_api_key_echoed_in_error_message_is_redacted():
    session = FakeSession(api_error(400, f"bad header X-API-Key: {API_KEY}"))
    error = publish_error(make_client(session))
    assert API_KEY not in error.message
    assert API_KEY not in str(error)
    assert "********" in error.message


def test_api_key_echoed_in_non_json_error_body_is_redacted():
    session = FakeSession(make_response(502, text=f"<pre>X-API-Key: {API_KEY}</pre>"))
    error = publish_error(make_client(session, retries=0))
    assert API_KEY not in error.message


def test_no_prefix_of_api_key_leaks_when_snippet_cuts_through_it():
    # The snippet is cut at 200 characters; if the body echoes the key across
    # that cut, the part before it must not come out either.
    body = "x" * 190 + API_KEY + "y" * 50
    session = FakeSession(make_response(404, text=body))
    error = publish_error(make_client(session))
    assert API_KEY[:10] not in error.message


def test_api_key_in_exception_text_is_redacted():
    session = FakeSession(*[requests.exceptions.ConnectionError(f"proxy said {API_KEY}") for attempt in range(2)])
    error = publish_error(make_client(session, retries=1))
    assert API_KEY not in error.message


def test_api_key_in_read_timeout_text_is_redacted():
    session = FakeSession(requests.exceptions.ReadTimeout(f"timeout {API_KEY}"))
    assert API_KEY not in publish_error(make_client(session)).message


def test_api_key_in_redirect_location_is_redacted():
    session = FakeSession(make_response(302, headers={"Location": f"https://x.invalid/?key={API_KEY}"}))
    assert API_KEY not in publish_error(make_client(session)).message


def test_api_key_with_trailing_newline_never_appears_in_invalid_header_error():
    # A key read from a file keeps its newline; requests refuses the header and
    # quotes the value with repr(), which plain substring redaction misses.
    key = "s3cret-from-a-file-7d1e\n"
    client = MonozClient(API_URL, ORG_ID, key, sleep=SleepRecorder())
    with WireTransport() as wire:
        with pytest.raises(MonozTransportError) as info:
            client.publish(BODY)
    assert wire.requests == []
    assert "s3cret-from-a-file-7d1e" not in info.value.message


def test_api_key_echoed_in_error_body_is_redacted_from_the_returned_response():
    # error.result.response becomes the task's `response` / results[].response.
    session = FakeSession(api_error(401, f"key {API_KEY} refused"))
    error = publish_error(make_client(session))
    assert API_KEY not in repr(error)
    assert API_KEY not in json.dumps(error.result.response)


# --- helpers -----------------------------------------------------------------

class _TopOfRange:
    def uniform(self, low, high):
        return high


def test_backoff_delay_ceiling_doubles_from_half_a_second():
    rng = _TopOfRange()
    assert [backoff_delay(n, rng) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_backoff_delay_is_capped():
    assert backoff_delay(50, _TopOfRange()) == BACKOFF_MAX_SECONDS


def test_backoff_delay_is_jittered_within_its_ceiling():
    rng = random.Random(1234)
    for retry_number in range(1, 30):
        delays = [backoff_delay(retry_number, rng) for draw in range(50)]
        ceiling = min(BACKOFF_MAX_SECONDS, 0.5 * 2 ** (retry_number - 1))
        assert all(0.0 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 1


@pytest.mark.parametrize("value, expected", [
    ("5", 5.0),
    (" 5 ", 5.0),
    ("0", 0.0),
    ("1.5", 1.5),
    ("121", 120.0),
    ("inf", 120.0),
    (None, None),
    ("", None),
    ("soon", None),
    ("NaN", None),
    ("nan", None),
])
def test_parse_retry_after(value, expected):
    assert parse_retry_after(value) == expected


@pytest.mark.parametrize("value", ["-5", "-inf"])
def test_parse_retry_after_never_returns_a_negative_delay(value):
    result = parse_retry_after(value)
    assert result is None or result >= 0.0


def test_parse_retry_after_http_date_is_relative_to_now():
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 42, usegmt=True), now=now) == 42.0


def test_parse_retry_after_http_date_in_the_past_is_zero():
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now - 600, usegmt=True), now=now) == 0.0


def test_parse_retry_after_http_date_far_ahead_is_clamped():
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 86400, usegmt=True), now=now) == 120.0


def test_close_leaves_a_lent_session_open_when_asked():
    session = FakeSession()
    make_client(session, close_session=False).close()
    assert not session.closed


def test_close_closes_the_session():
    session = FakeSession()
    make_client(session).close()
    assert session.closed
