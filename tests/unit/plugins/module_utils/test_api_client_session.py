# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""PooledSession: requests prepared once per URL, sent through requests' own adapter; SessionKeeper: one per worker."""

from __future__ import annotations

import threading
import time
from unittest import mock

import pytest
import requests
import urllib3

from ansible_collections.monoz.link.plugins.module_utils import _api_client
from ansible_collections.monoz.link.plugins.module_utils._api_client import (
    MonozClient,
    MonozTransportError,
    PooledSession,
    SessionKeeper,
)
from ansible_collections.monoz.link.tests.unit.fakes import (
    API_KEY,
    API_URL,
    ICCID,
    ORG_ID,
    PUBLISH_URL,
    SleepRecorder,
    WireTransport,
    make_response,
    ok,
)

ORG_URL = f"{API_URL}/{ORG_ID}"


def test_each_send_carries_its_own_body_and_length():
    session = PooledSession(ORG_URL, API_KEY)
    with WireTransport(ok(), ok()) as wire:
        session.request("POST", PUBLISH_URL, data=b'{"a":1}', timeout=5)
        session.request("POST", PUBLISH_URL, data=b'{"long":"body"}', timeout=5)
    assert [(r.body, r.headers["Content-Length"]) for r in wire.requests] == [
        (b'{"a":1}', "7"), (b'{"long":"body"}', "15"),
    ]


def test_headers_are_requests_defaults_plus_the_apis():
    session = PooledSession(ORG_URL, API_KEY)
    with WireTransport(ok()) as wire:
        session.request("POST", PUBLISH_URL, data=b"{}", timeout=5)
    headers = wire.requests[0].headers
    defaults = requests.utils.default_headers()
    assert headers["Accept-Encoding"] == defaults["Accept-Encoding"]
    assert headers["Connection"] == "keep-alive"
    assert headers["X-API-Key"] == API_KEY
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept"] == "application/json"
    assert headers["User-Agent"] == "monoz.link-ansible-collection"
    assert "Cookie" not in headers and "Authorization" not in headers


def test_a_read_has_no_body_and_no_length():
    session = PooledSession(ORG_URL, API_KEY)
    with WireTransport(ok()) as wire:
        session.request("GET", f"{ORG_URL}/Device/Sim/Detail/{ICCID}", timeout=5)
    assert wire.requests[0].body == b""
    assert "Content-Length" not in wire.requests[0].headers


def test_timeout_verify_and_proxies_reach_the_adapter(monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = PooledSession(ORG_URL, API_KEY)
    with WireTransport(ok()) as wire:
        session.request("POST", PUBLISH_URL, data=b"{}", timeout=7.5, verify="/etc/ca.pem")
    kwargs = wire.requests[0].kwargs
    assert kwargs["timeout"] == 7.5 and kwargs["verify"] == "/etc/ca.pem" and kwargs["stream"] is False
    assert kwargs["proxies"]["https"] == "http://127.0.0.1:3128"


def test_the_url_is_prepared_by_requests():
    # requests re-quotes what must be quoted; the cached preparation must too.
    session = PooledSession(ORG_URL, API_KEY)
    with WireTransport(ok(), ok()) as wire:
        session.request("GET", f"{ORG_URL}/Device/Sim/Detail/a b", timeout=5)
        session.request("GET", f"{ORG_URL}/Device/Sim/Detail/a b", timeout=5)
    assert [r.url for r in wire.requests] == [f"{ORG_URL}/Device/Sim/Detail/a%20b"] * 2


def test_prepared_urls_are_bounded_and_each_url_still_goes_where_asked(monkeypatch):
    monkeypatch.setattr(_api_client, "MAX_PREPARED_URLS", 3)
    session = PooledSession(ORG_URL, API_KEY)
    urls = [f"{ORG_URL}/Device/Sim/Detail/{number}" for number in range(6)]
    with WireTransport(handler=lambda request: ok()) as wire:
        for url in urls + urls:
            session.request("GET", url, timeout=5)
    assert [r.url for r in wire.requests] == urls + urls
    assert len(session._prepared) == 3


def test_concurrent_sends_do_not_share_headers():
    session = PooledSession(ORG_URL, API_KEY)
    bodies = [b"x" * length for length in range(1, 201)]
    with WireTransport(handler=lambda request: ok()) as wire:
        threads = [threading.Thread(target=session.request, args=("POST", PUBLISH_URL),
                                    kwargs={"data": body, "timeout": 5}) for body in bodies]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert sorted(len(r.body) for r in wire.requests) == list(range(1, 201))
    assert all(r.headers["Content-Length"] == str(len(r.body)) for r in wire.requests)


def test_following_redirects_is_refused():
    with pytest.raises(ValueError):
        PooledSession(ORG_URL, API_KEY).request("POST", PUBLISH_URL, data=b"{}", allow_redirects=True)


def test_close_closes_the_connection_pool():
    session = PooledSession(ORG_URL, API_KEY)
    with mock.patch.object(session.adapter, "close") as close:
        session.close()
    close.assert_called_once_with()


def test_connection_error_from_the_adapter_is_retried_by_the_client():
    refused = requests.exceptions.ConnectionError("[Errno 111] Connection refused")
    client = MonozClient(API_URL, ORG_ID, API_KEY, retries=1, sleep=SleepRecorder())
    with WireTransport(refused, ok()) as wire:
        result = client.publish({"ICCID": ICCID})
    assert result.attempts == 2 and len(wire.requests) == 2


def test_a_body_that_breaks_mid_read_fails_the_request_without_retry():
    broken = make_response(200, text="")
    broken._content = False
    broken._content_consumed = False
    broken.raw = mock.Mock()
    broken.raw.stream.side_effect = urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")
    client = MonozClient(API_URL, ORG_ID, API_KEY, retries=3, sleep=SleepRecorder())
    with WireTransport(broken) as wire:
        with pytest.raises(MonozTransportError) as info:
            client.publish({"ICCID": ICCID})
    assert len(wire.requests) == 1
    assert "IncompleteRead" in info.value.message and API_KEY not in info.value.message


# --- SessionKeeper: one session across the tasks of a worker -----------------

def kept_client(keeper, **kwargs):
    arguments = {"api_url": API_URL, "org_id": ORG_ID, "api_key": API_KEY, "pool_size": 1, "sleep": SleepRecorder()}
    arguments.update(kwargs)
    return keeper.client(**arguments)


def test_clients_of_one_process_share_the_session_and_leave_it_open():
    keeper = SessionKeeper()
    first = kept_client(keeper)
    with mock.patch.object(first._session.adapter, "close") as close:
        first.close()
        second = kept_client(keeper, timeout=5.0, retries=0)
    close.assert_not_called()
    assert second._session is first._session
    assert second.timeout == 5.0 and second.retries == 0


def test_clients_of_a_kept_session_send_with_their_own_settings():
    keeper = SessionKeeper()
    with WireTransport(ok(), ok()) as wire:
        kept_client(keeper, timeout=3.0).publish({"ICCID": ICCID})
        kept_client(keeper, timeout=9.0, validate_certs=False).publish({"ICCID": ICCID})
    assert [(r.kwargs["timeout"], r.kwargs["verify"]) for r in wire.requests][1] == (9.0, False)
    assert wire.requests[0].kwargs["timeout"] == 3.0


@pytest.mark.parametrize("change", [
    {"api_key": "another-key"},
    {"pool_size": 32},
])
def test_a_new_session_when_the_key_or_pool_size_differs_and_the_old_one_is_closed(change):
    keeper = SessionKeeper()
    first = kept_client(keeper)
    with mock.patch.object(first._session.adapter, "close") as close:
        second = kept_client(keeper, **change)
    close.assert_called_once_with()
    assert second._session is not first._session


def test_a_new_key_is_sent_with_the_new_session():
    keeper = SessionKeeper()
    with WireTransport(ok(), ok()) as wire:
        kept_client(keeper).publish({"ICCID": ICCID})
        kept_client(keeper, api_key="another-key").publish({"ICCID": ICCID})
    assert [r.headers["X-API-Key"] for r in wire.requests] == [API_KEY, "another-key"]


def test_a_new_session_when_the_environment_changes_the_proxy(monkeypatch):
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    keeper = SessionKeeper()
    direct = kept_client(keeper)
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    proxied = kept_client(keeper)
    assert proxied._session is not direct._session
    assert proxied._session.proxies["https"] == "http://127.0.0.1:3128"


def test_a_new_session_after_an_idle_spell():
    offset = [0.0]
    keeper = SessionKeeper(clock=lambda: time.monotonic() + offset[0])
    first = kept_client(keeper)
    offset[0] = SessionKeeper.IDLE_SECONDS / 2
    assert kept_client(keeper)._session is first._session
    offset[0] = SessionKeeper.IDLE_SECONDS + 1
    assert kept_client(keeper)._session is not first._session


def test_a_session_made_before_a_fork_is_not_lent_after_it(monkeypatch):
    keeper = SessionKeeper()
    parent = kept_client(keeper)
    monkeypatch.setattr(_api_client.os, "getpid", lambda: parent._session.pid + 1)
    with mock.patch.object(parent._session.adapter, "close") as close:
        child = kept_client(keeper)
    close.assert_not_called()  # the parent's sockets are the parent's
    assert child._session is not parent._session


def test_the_keeper_holds_no_plain_key():
    keeper = SessionKeeper()
    kept_client(keeper)
    assert API_KEY not in repr(keeper._key)
