"""Issue 6, part 4: slow and broken servers give a clear per-device error, quickly.

Each server is a thread in this process on 127.0.0.1:0 (rel_servers.py),
stopped in ``finally`` by the context manager.  The batch is four devices.
"""

from __future__ import annotations

import pytest

from rel_servers import CannedServer, HangServer, RecordingServer, http_response
from rel_support import API_KEY, ORG, iccid

DEVICES = [iccid(index) for index in range(4)]
ANSIBLE_OVERHEAD_S = 25  # ansible-playbook start, fork, result; generous for a loaded 2-core CI box


def _batch(ansible, api_url, **args):
    extra = {"rel_org_id": ORG, "rel_api_key": API_KEY, "rel_api_url": api_url,
             "rel_args": {"devices": DEVICES, "payload": "x", **args}}
    return ansible.run("downlink.yml", extra)


def _assert_every_device_failed(run, fragment):
    assert run.rc == 2, run.describe()
    results = run.result["results"]
    assert [row["iccid"] for row in results] == DEVICES
    for row in results:
        assert row["status"] == "failed", row
        assert fragment.lower() in row["msg"].lower(), row["msg"]
        assert row["iccid"] in row["msg"], row["msg"]
    assert run.result["summary"]["failed"] == len(DEVICES)


def test_hanging_server_ends_within_timeout_times_attempts(ansible, execution):
    timeout, retries = 1.5, 2
    with HangServer() as server:
        run = _batch(ansible, server.url + "/api/v1", timeout=timeout, retries=retries, concurrency=4)
        requests_seen = server.requests
    # One attempt per device: a read timeout is never retried (the server may have published).
    _assert_every_device_failed(run, "timed out")
    assert all(row["attempts"] == 1 for row in run.result["results"])
    assert requests_seen == len(DEVICES)
    assert run.elapsed < timeout * (retries + 1) + ANSIBLE_OVERHEAD_S, run.elapsed


@pytest.mark.parametrize(("status", "body", "content_type", "fragment"), [
    ("200 OK", b"<html><body><h1>Welcome to our portal</h1></body></html>", "text/html", "not the API's JSON"),
    ("500 Internal Server Error", b"<html><body>Oops</body></html>", "text/html", "HTTP 500"),
    ("502 Bad Gateway", b"<html><body>nginx bad gateway</body></html>", "text/html", "HTTP 502"),
    ("200 OK", b"\x00\xff\xfegarbage{{{", "application/json", "not the API's JSON"),
], ids=["200-html", "500-html", "502-html-retried", "200-garbage"])
def test_garbage_or_html_answer_is_a_clear_failure(ansible, status, body, content_type, fragment):
    with CannedServer(http_response(status, body, content_type=content_type)) as server:
        run = _batch(ansible, server.url + "/api/v1", retries=1, concurrency=2)
    _assert_every_device_failed(run, fragment)


def test_not_http_at_all_is_a_clear_failure(ansible):
    with CannedServer(b"SSH-2.0-OpenSSH_9.2\r\n") as server:
        run = _batch(ansible, server.url + "/api/v1", retries=1, concurrency=2)
    _assert_every_device_failed(run, "")
    for row in run.result["results"]:
        assert "BadStatusLine" in row["msg"] or "Connection aborted" in row["msg"] or "reach" in row["msg"], row


def test_connection_closed_mid_body_is_a_failure_not_retried(ansible):
    # Content-Length promises 500 bytes, 20 arrive, then the connection closes.
    answer = http_response("200 OK", b'{"Error": false, "St', content_type="application/json", content_length=500)
    with CannedServer(answer) as server:
        run = _batch(ansible, server.url + "/api/v1", retries=3, concurrency=2)
        seen = server.requests
    _assert_every_device_failed(run, DEVICES[0][:0])
    for row in run.result["results"]:
        assert "IncompleteRead" in row["msg"] or "broke" in row["msg"] or "Connection broken" in row["msg"], row
    # A 200 whose body broke may have been published: never retried, never journaled.
    assert seen == len(DEVICES)


@pytest.mark.parametrize("status", ["302 Found", "307 Temporary Redirect"])
def test_redirect_is_not_followed_and_the_key_never_reaches_the_target(ansible, status):
    with RecordingServer() as target:
        location = f"Location: {target.url}/api/v1/{ORG}/Publish/Message\r\n"
        with CannedServer(http_response(status, b"", extra_headers=location)) as redirector:
            run = _batch(ansible, redirector.url + "/api/v1", retries=2, concurrency=2)
            redirects = redirector.requests
        recorded = list(target.recorded)
    _assert_every_device_failed(run, "redirect")
    assert recorded == [], f"the redirect was followed: {recorded}"
    assert not any(API_KEY in str(request.headers) for request in recorded)
    assert redirects == len(DEVICES), "a redirect is not a transient fault: no retry"
