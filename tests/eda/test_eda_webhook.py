"""monoz.link.webhook on its own: the real aiohttp server on 127.0.0.1, a real HTTP client.

Covers the contract (one event per packet, payload_json, 200 only once queued),
every authentication kind, the 400/401/404/405/413 answers, TLS, and the
back-pressure policy (the answer waits for the queue; an accepted batch is
never dropped, even when the sender hangs up).
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
from typing import Any

import pytest
import requests

from conftest import AUTH_HEADERS
from eda_support import (
    HEADER_NAME, HEADER_VALUE, PASSWORD, TOKEN, USERNAME, assert_event_well_formed, assert_no_secret, self_signed_cert,
)

TS = "2026-11-30T09:17:32.1233516Z"
ICCID = "8988280666000000001"


def packet(iccid: str = ICCID, payload: str = "ABC", ts: str = TS, **extra: Any) -> dict[str, Any]:
    return {"ICCID": iccid, "Timestamp": ts, "Payload": payload, **extra}


def post(url: str, body: Any, headers: dict[str, str] | None = None, raw: bytes | None = None,
         **kwargs: Any) -> requests.Response:
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(url + "/", data=data, headers={"Content-Type": "application/json", **(headers or {})},
                         timeout=30, **kwargs)


def barrier(source: Any, auth: str = "bearer") -> None:
    """Nothing is pending: a marker posted now is the next event (requests are queued in arrival order)."""
    marker = f"barrier-{threading.get_ident()}-{id(source)}"
    response = post(source.url, packet(payload=marker), AUTH_HEADERS[auth])
    assert response.status_code == 200, response.text
    event = source.next_event()
    assert event["monoz"]["payload"] == marker, f"an unexpected event was queued: {event!r}"


# -- the contract -------------------------------------------------------------------------------


def test_single_packet_becomes_one_event_with_payload_json(start_webhook):
    source = start_webhook()
    response = post(source.url, packet(payload='{"config_version": 3, "apn": "iot"}'), AUTH_HEADERS["bearer"])
    assert response.status_code == 200
    assert response.json()["packets"] == 1
    event = source.next_event()
    assert event == {"monoz": {"iccid": ICCID, "topic": None, "timestamp": TS,
                               "payload": '{"config_version": 3, "apn": "iot"}',
                               "payload_json": {"config_version": 3, "apn": "iot"}}}
    barrier(source)


def test_array_of_ten_becomes_ten_events_in_order(start_webhook):
    source = start_webhook()
    body = [packet(iccid=f"{index:019d}", payload=f"P{index}") for index in range(10)]
    assert post(source.url, body, AUTH_HEADERS["bearer"]).status_code == 200
    events = [source.next_event() for _ in range(10)]
    assert [event["monoz"]["payload"] for event in events] == [f"P{index}" for index in range(10)]
    for event in events:
        assert "payload_json" not in assert_event_well_formed(event)
    barrier(source)


@pytest.mark.parametrize(("payload", "expected"), [
    ('{"a": [1, 2]}', {"a": [1, 2]}),
    ("[1, 2]", [1, 2]),
    ("42", 42),
    ('"text"', "text"),
    ("null", None),
    ("[" * 64 + "]" * 64, eval("[" * 64 + "]" * 64)),  # noqa: S307 - a literal nested list
])
def test_payload_json_present_when_the_payload_parses(start_webhook, payload, expected):
    source = start_webhook()
    assert post(source.url, packet(payload=payload), AUTH_HEADERS["bearer"]).status_code == 200
    data = assert_event_well_formed(source.next_event())
    assert "payload_json" in data and data["payload_json"] == expected


@pytest.mark.parametrize("payload", [
    "DFa0FC31EE", "", "{not json", "NaN", "Infinity", "1e999", '{"a": -1e400}', "[" * 65 + "]" * 65,
    "[" * 5000 + "]" * 5000, '"\\ud800"', "9" * 5000,
])
def test_payload_json_absent_when_the_payload_does_not_parse(start_webhook, payload):
    source = start_webhook()
    assert post(source.url, packet(payload=payload), AUTH_HEADERS["bearer"]).status_code == 200
    data = assert_event_well_formed(source.next_event())
    assert "payload_json" not in data
    assert data["payload"] == payload


def test_topic_packets_carry_the_topic_and_the_iccid_read_from_it(start_webhook):
    source = start_webhook()
    body = [
        {"Topic": f"/DEMO/{ICCID}/status", "Timestamp": TS, "Payload": "1"},
        {"Topic": f"DEMO/{ICCID}", "Timestamp": TS, "Payload": "2"},
        {"Topic": f"site7/DEMO/{ICCID}/gps", "Timestamp": TS, "Payload": "3"},
        {"Topic": "no-iccid-here", "Timestamp": TS, "Payload": "4"},
        {"ICCID": ICCID, "Topic": "/mti/123", "Timestamp": TS, "Payload": "5"},
    ]
    assert post(source.url, body, AUTH_HEADERS["bearer"]).status_code == 200
    got = [assert_event_well_formed(source.next_event()) for _ in body]
    assert [(data["iccid"], data["topic"]) for data in got] == [
        (ICCID, f"/DEMO/{ICCID}/status"), (ICCID, f"DEMO/{ICCID}"), (ICCID, f"site7/DEMO/{ICCID}/gps"),
        (None, "no-iccid-here"), (ICCID, "/mti/123"),
    ]


def test_extra_packet_fields_are_not_emitted(start_webhook):
    source = start_webhook()
    assert post(source.url, packet(Extra={"x": 1}), AUTH_HEADERS["bearer"]).status_code == 200
    assert set(assert_event_well_formed(source.next_event())) == {"iccid", "topic", "timestamp", "payload"}


def test_custom_path_only(start_webhook):
    source = start_webhook(path="/monoz/uplinks")
    assert requests.post(source.url + "/monoz/uplinks", json=packet(), headers=AUTH_HEADERS["bearer"],
                         timeout=30).status_code == 200
    assert source.next_event()["monoz"]["iccid"] == ICCID
    assert requests.post(source.url + "/", json=packet(), headers=AUTH_HEADERS["bearer"], timeout=30).status_code == 404
    assert requests.get(source.url + "/monoz/uplinks", headers=AUTH_HEADERS["bearer"], timeout=30).status_code == 405


# -- authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["bearer", "basic", "header"])
def test_each_authentication_kind_accepts_its_credentials(start_webhook, auth):
    source = start_webhook(auth)
    assert post(source.url, packet(), AUTH_HEADERS[auth]).status_code == 200
    assert_event_well_formed(source.next_event())


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


WRONG_CREDENTIALS = {
    "bearer": [
        {}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {TOKEN}x"}, {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}, {"Authorization": "Bearer"},
        {"Authorization": f"Token {TOKEN}"}, basic(USERNAME, PASSWORD), {HEADER_NAME: TOKEN},
    ],
    "basic": [
        {}, basic(USERNAME, "wrong"), basic("someone", PASSWORD), basic(USERNAME, PASSWORD + "x"), basic(USERNAME, ""),
        {"Authorization": "Basic !!!not-base64!!!"}, {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe:x").decode()},
        {"Authorization": "Basic " + base64.b64encode(f"{USERNAME}{PASSWORD}".encode()).decode()},
        {"Authorization": f"Bearer {PASSWORD}"}, {"Authorization": "Basic"},
    ],
    "header": [
        {}, {HEADER_NAME: "wrong"}, {HEADER_NAME: HEADER_VALUE + " "[:0] + "x"}, {HEADER_NAME: ""},
        {"X-Other-Header": HEADER_VALUE}, {"Authorization": f"Bearer {HEADER_VALUE}"}, {HEADER_NAME: HEADER_VALUE.upper()},
    ],
}


@pytest.mark.parametrize("auth", ["bearer", "basic", "header"])
def test_wrong_or_missing_credentials_answer_401_and_emit_nothing(start_webhook, auth):
    source = start_webhook(auth)
    for headers in WRONG_CREDENTIALS[auth]:
        response = post(source.url, packet(payload="must-not-arrive"), headers)
        assert response.status_code == 401, headers
        assert_no_secret(response.text, dict(response.headers))
        if auth == "bearer":
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        if auth == "basic":
            assert response.headers["WWW-Authenticate"].startswith("Basic")
    barrier(source, auth)
    assert_no_secret(source.logs.text())


def test_401_comes_before_the_body_is_judged(start_webhook):
    source = start_webhook()
    assert post(source.url, None, {"Authorization": "Bearer nope"}, raw=b"not json").status_code == 401
    huge = b"x" * 2_000_000
    assert post(source.url, None, {"Authorization": "Bearer nope"}, raw=huge).status_code == 401


def test_header_name_is_case_insensitive_as_http_says(start_webhook):
    source = start_webhook("header")
    assert post(source.url, packet(), {HEADER_NAME.lower(): HEADER_VALUE}).status_code == 200
    assert_event_well_formed(source.next_event())


def test_bearer_scheme_is_case_insensitive(start_webhook):
    source = start_webhook("bearer")
    assert post(source.url, packet(), {"Authorization": f"bearer {TOKEN}"}).status_code == 200
    assert_event_well_formed(source.next_event())


def test_insecure_no_auth_accepts_anyone_and_warns(start_webhook):
    source = start_webhook(None, insecure_no_auth=True)
    assert post(source.url, packet()).status_code == 200
    assert_event_well_formed(source.next_event())
    assert "insecure_no_auth" in source.logs.text()


# -- malformed bodies ---------------------------------------------------------------------------

GOOD = packet()
MALFORMED = {
    "not JSON": b"{'ICCID': 1}",
    "truncated": json.dumps([GOOD])[:-3].encode(),
    "not UTF-8": b'{"ICCID": "\xff", "Timestamp": "x", "Payload": "y"}',
    "empty body": b"",
    "empty array": b"[]",
    "eleven packets": json.dumps([GOOD] * 11).encode(),
    "a string": b'"packet"',
    "a number": b"12",
    "null": b"null",
    "NaN": b"NaN",
    "array of numbers": b"[1, 2]",
    "nested array": json.dumps([[GOOD]]).encode(),
    "deep nesting": b"[" * 100000 + b"]" * 100000,
    "huge integer": b"[" + b"9" * 10000 + b"]",
    "ICCID a number": json.dumps({**GOOD, "ICCID": 8988}).encode(),
    "ICCID letters": json.dumps({**GOOD, "ICCID": "89ab"}).encode(),
    "ICCID too long": json.dumps({**GOOD, "ICCID": "1" * 23}).encode(),
    "ICCID empty": json.dumps({**GOOD, "ICCID": ""}).encode(),
    "Payload missing": json.dumps({"ICCID": ICCID, "Timestamp": TS}).encode(),
    "Payload a number": json.dumps({**GOOD, "Payload": 5}).encode(),
    "Payload an object": json.dumps({**GOOD, "Payload": {"a": 1}}).encode(),
    "Payload null": json.dumps({**GOOD, "Payload": None}).encode(),
    "Payload lone surrogate": b'{"ICCID": "1", "Timestamp": "2026-11-30T09:17:32Z", "Payload": "\\udc00"}',
    "Timestamp missing": json.dumps({"ICCID": ICCID, "Payload": "x"}).encode(),
    "Timestamp a number": json.dumps({**GOOD, "Timestamp": 1700000000}).encode(),
    "Timestamp not ISO": json.dumps({**GOOD, "Timestamp": "yesterday"}).encode(),
    "Timestamp not a date": json.dumps({**GOOD, "Timestamp": "2026-02-30T09:17:32.1233516Z"}).encode(),
    "neither ICCID nor Topic": json.dumps({"Timestamp": TS, "Payload": "x"}).encode(),
    "Topic a list": json.dumps({"Topic": ["a"], "Timestamp": TS, "Payload": "x"}).encode(),
    "one bad packet in a batch": json.dumps([GOOD, GOOD, {**GOOD, "Payload": 1}]).encode(),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_body_answers_400_and_emits_nothing(start_webhook, case):
    source = start_webhook()
    response = post(source.url, None, AUTH_HEADERS["bearer"], raw=MALFORMED[case])
    assert response.status_code == 400, response.text
    assert response.json()["message"]
    barrier(source)  # nothing of the request was queued, not even its good packets


def test_400_message_names_the_packet_and_field(start_webhook):
    source = start_webhook()
    response = post(source.url, None, AUTH_HEADERS["bearer"], raw=MALFORMED["one bad packet in a batch"])
    assert response.json()["message"] == "packet 2: Payload is a JSON number, not a string"


# -- size limits --------------------------------------------------------------------------------


def padded(size: int) -> bytes:
    """A valid one-packet body of exactly `size` bytes."""
    base = json.dumps(packet(payload=""))
    body = json.dumps(packet(payload="x" * (size - len(base)))).encode()
    assert len(body) == size
    return body


def test_body_at_the_limit_is_accepted_and_one_byte_more_is_413(start_webhook):
    source = start_webhook(max_body_size=4096)
    assert post(source.url, None, AUTH_HEADERS["bearer"], raw=padded(4096)).status_code == 200
    assert len(source.next_event()["monoz"]["payload"]) > 3900
    response = post(source.url, None, AUTH_HEADERS["bearer"], raw=padded(4097))
    assert response.status_code == 413
    barrier(source)


def test_chunked_body_over_the_limit_is_413(start_webhook):
    source = start_webhook(max_body_size=4096)

    def chunks():
        body = padded(10000)
        for start in range(0, len(body), 1000):
            yield body[start:start + 1000]

    response = requests.post(source.url + "/", data=chunks(), headers=AUTH_HEADERS["bearer"], timeout=30)
    assert response.status_code == 413
    barrier(source)


def test_default_limit_takes_ten_largest_uplinks(start_webhook):
    source = start_webhook()
    body = json.dumps([packet(payload="\u0001" * 6144) for _ in range(10)]).encode()  # every byte escaped as \u0001
    assert len(body) > 360_000
    assert post(source.url, None, AUTH_HEADERS["bearer"], raw=body).status_code == 200
    assert [source.next_event()["monoz"]["payload"] for _ in range(10)] == ["\u0001" * 6144] * 10


# -- TLS ----------------------------------------------------------------------------------------


def test_https_with_certfile_and_keyfile(start_webhook, tmp_path):
    certfile, keyfile = self_signed_cert(tmp_path)
    source = start_webhook(certfile=str(certfile), keyfile=str(keyfile))
    url = f"https://127.0.0.1:{source.port}/"
    response = requests.post(url, json=packet(), headers=AUTH_HEADERS["bearer"], verify=str(certfile), timeout=30)
    assert response.status_code == 200
    assert_event_well_formed(source.next_event())
    with pytest.raises(requests.ConnectionError):
        requests.post(source.url + "/", json=packet(), headers=AUTH_HEADERS["bearer"], timeout=30)  # plain HTTP


# -- back-pressure ------------------------------------------------------------------------------


def post_in_thread(url: str, body: Any, results: list) -> threading.Thread:
    def run() -> None:
        results.append(post(url, body, AUTH_HEADERS["bearer"]))

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def wait_queued(source: Any, count: int) -> None:
    """Until the source's queue holds `count` events (the consumer is stopped, so it only grows)."""
    import time

    deadline = time.monotonic() + 20
    while source.queued() < count:
        assert time.monotonic() < deadline, "the source did not queue the events"
        time.sleep(0.01)


def test_answer_waits_until_every_packet_is_queued(start_webhook):
    source = start_webhook(auto_consume=False)  # the engine's queue holds one event, and nobody reads it
    results: list[requests.Response] = []
    thread = post_in_thread(source.url, [packet(payload=f"P{i}") for i in range(3)], results)
    wait_queued(source, 1)
    # Two packets cannot be queued yet, so there must be no answer.
    assert thread.is_alive() and not results
    events = source.take(3)
    thread.join(30)
    assert [response.status_code for response in results] == [200]
    assert [event["monoz"]["payload"] for event in events] == ["P0", "P1", "P2"]


def test_concurrent_batches_are_queued_whole_and_in_arrival_order(start_webhook):
    source = start_webhook(auto_consume=False)
    results: list[requests.Response] = []
    first = post_in_thread(source.url, [packet(payload=f"A{i}") for i in range(4)], results)
    wait_queued(source, 1)
    second = post_in_thread(source.url, [packet(payload=f"B{i}") for i in range(4)], results)
    third = post_in_thread(source.url, [packet(payload=f"C{i}") for i in range(4)], results)
    events = [event["monoz"]["payload"] for event in source.take(12)]
    for thread in (first, second, third):
        thread.join(30)
    assert [response.status_code for response in results] == [200, 200, 200]
    assert events[:4] == ["A0", "A1", "A2", "A3"]
    blocks = {tuple(events[4:8]), tuple(events[8:12])}
    assert blocks == {("B0", "B1", "B2", "B3"), ("C0", "C1", "C2", "C3")}


def test_a_sender_that_hangs_up_while_waiting_loses_nothing(start_webhook):
    source = start_webhook(auto_consume=False)
    assert post(source.url, packet(payload="first"), AUTH_HEADERS["bearer"]).status_code == 200  # fills the queue
    body = json.dumps([packet(payload=f"late{i}") for i in range(3)]).encode()
    with socket.create_connection(("127.0.0.1", source.port), timeout=10) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )
    # the connection is closed before any answer could come
    events = source.take(4)
    assert [event["monoz"]["payload"] for event in events] == ["first", "late0", "late1", "late2"]


# -- slow clients -------------------------------------------------------------------------------


def test_slow_body_gets_408_and_does_not_hold_others(start_webhook):
    source = start_webhook(body_timeout=0.5)
    with socket.create_connection(("127.0.0.1", source.port), timeout=15) as slow:
        slow.sendall(
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {TOKEN}\r\nContent-Length: 500\r\n\r\n".encode() + b'{"ICCID"'
        )
        # while the slow client holds its request open, others are served
        assert post(source.url, packet(payload="fast"), AUTH_HEADERS["bearer"]).status_code == 200
        assert source.next_event()["monoz"]["payload"] == "fast"
        answer = slow.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    barrier(source)


def test_slowloris_headers_do_not_block_the_endpoint(start_webhook):
    source = start_webhook()
    sockets = []
    try:
        for _ in range(50):  # many connections each stuck half-way through their headers
            sock = socket.create_connection(("127.0.0.1", source.port), timeout=10)
            sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(sock)
        connection = http.client.HTTPConnection("127.0.0.1", source.port, timeout=10)
        connection.request("POST", "/", body=json.dumps(packet(payload="through")),
                           headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        assert connection.getresponse().status == 200
        connection.close()
        assert source.next_event()["monoz"]["payload"] == "through"
    finally:
        for sock in sockets:
            sock.close()


# -- secrets ------------------------------------------------------------------------------------


@pytest.mark.parametrize("auth", ["bearer", "basic", "header"])
def test_credentials_appear_in_no_event_and_no_log(start_webhook, auth):
    source = start_webhook(auth)
    body = [packet(payload=f"P{i}") for i in range(3)]
    assert post(source.url, body, AUTH_HEADERS[auth]).status_code == 200
    events = [source.next_event() for _ in body]
    assert post(source.url, body, {"Authorization": f"Bearer {PASSWORD}{HEADER_VALUE}{TOKEN}"}).status_code in (200, 401)
    assert post(source.url, None, AUTH_HEADERS[auth], raw=b"{bad").status_code == 400
    barrier(source, auth)
    assert_no_secret(json.dumps(events), source.logs.text())
    assert USERNAME not in source.logs.text()


def test_a_malformed_header_carrying_the_token_is_logged_redacted(start_webhook):
    source = start_webhook()
    with socket.create_connection(("127.0.0.1", source.port), timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() + b"\x01\r\n"
                     + b"Content-Length: 2\r\n\r\n{}")
        assert sock.recv(4096).split(b" ")[1] == b"400"  # refused by aiohttp's parser, which logs the line
    barrier(source)
    logs = source.logs.text()
    assert "Invalid header value" in logs and "********" in logs
    assert_no_secret(logs)
