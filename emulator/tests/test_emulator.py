"""Tests of the Monoz Link emulator, through its HTTP API and its simulated devices.

Every emulator runs as a subprocess (EmulatorProcess) and is stopped by PID
when its fixture or `with` block ends, pass or fail. Synchronisation uses the
emulator's blocking `wait_for` / `wait_total` queries, never sleeps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator_test_support import BROKERS  # noqa: E402
from monoz_emulator.testing import EmulatorError, EmulatorProcess, generated_iccid  # noqa: E402

ICCID = generated_iccid(0)
ICCID2 = generated_iccid(1)
VENDOR_ICCID = "12345678"


@pytest.fixture(scope="module", params=BROKERS)
def emu(request: pytest.FixtureRequest) -> Any:
    with EmulatorProcess(devices=50, mqtt_broker=request.param) as proc:
        yield proc
        # Faults, resets and bursts must not leave tracebacks in the emulator's log.
        assert "Traceback" not in proc.stderr_text(), proc.stderr_text()


@pytest.fixture(autouse=True)
def _clean(request: pytest.FixtureRequest) -> None:
    if "emu" in request.fixturenames:
        request.getfixturevalue("emu").reset()


def body(iccid: str = ICCID, message: str = "hello", topic: str = "", qos: int = 0, fmt: int = 1, **extra: Any) -> dict[str, Any]:
    return {"ICCID": iccid, "Topic": topic, "Message": message, "QoS": qos, "Format": fmt, **extra}


def post(emu: EmulatorProcess, payload: Any, key: str | None = None, org: str | None = None, raw: bytes | None = None,
         timeout: float = 10) -> requests.Response:
    url = f"{emu.api_url}/{org or emu.org}/Publish/Message"
    headers = {"X-API-Key": emu.api_key if key is None else key, "Content-Type": "application/json"}
    data = raw if raw is not None else json.dumps(payload).encode()
    return requests.post(url, data=data, headers=headers, timeout=timeout)


def assert_error(resp: requests.Response, status: int, fragment: str = "") -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    data = resp.json()
    assert data["Error"] is True
    assert data["StatusCode"] == status
    assert isinstance(data["Message"], str) and data["Message"]
    assert fragment.lower() in data["Message"].lower(), data["Message"]
    return data


# --------------------------------------------------------------------- basics

def test_ready_info(emu: EmulatorProcess) -> None:
    assert emu.api_url.startswith("http://127.0.0.1:") and emu.api_url.endswith("/api/v1")
    assert emu.control_url.startswith("http://127.0.0.1:") and emu.control_url.endswith("/_emulator")
    assert emu.info["mqtt_host"] == "127.0.0.1" and emu.mqtt_port
    assert emu.info["org"] == "DEMO" and emu.info["api_key"] == "demo-api-key"
    assert emu.device_count == 51  # 50 generated + the vendor's example 12345678
    assert len(ICCID) == 19 and ICCID == "8988280666000000000"
    assert emu.health() == {"ok": True}
    os.kill(emu.pid, 0)  # alive


def test_publish_base_topic_qos0(emu: EmulatorProcess) -> None:
    resp = post(emu, body(message="XYZ", qos=0))
    assert resp.status_code == 200
    assert resp.json() == {"Error": False, "StatusCode": 200, "Message": "MessagePublished"}
    got = emu.received(ICCID, wait_for=1)
    assert got == [{"topic": f"/DEMO/{ICCID}/sub", "payload": "XYZ", "qos": 0, "retain": False}]
    [logged] = emu.messages()
    assert logged["iccid"] == ICCID and logged["topic"] == "" and logged["message"] == "XYZ"
    assert logged["qos"] == 0 and logged["format"] == 1 and logged["retain"] is False
    assert logged["mqtt_topic"] == f"/DEMO/{ICCID}/sub"


def test_publish_topic_suffix_qos1(emu: EmulatorProcess) -> None:
    assert post(emu, body(topic="/config/apn", message="apn=iot", qos=1)).status_code == 200
    got = emu.received(ICCID, wait_for=1)
    assert got == [{"topic": f"/DEMO/{ICCID}/sub/config/apn", "payload": "apn=iot", "qos": 1, "retain": False}]


def test_vendor_example_request(emu: EmulatorProcess) -> None:
    resp = post(emu, {"ICCID": "12345678", "Topic": "/ABC", "Message": "XYZ", "QoS": 0, "Format": 1})
    assert resp.status_code == 200
    assert emu.received(VENDOR_ICCID, wait_for=1)[0]["topic"] == "/DEMO/12345678/sub/ABC"


def test_utf8_payload_roundtrip(emu: EmulatorProcess) -> None:
    msg = json.dumps({"name": "Zürich ✓"}, ensure_ascii=False, separators=(",", ":"))
    assert post(emu, body(message=msg, fmt=0)).status_code == 200
    assert emu.received(ICCID, wait_for=1)[0]["payload"] == msg


def test_format0_strips_cr_lf(emu: EmulatorProcess) -> None:
    assert post(emu, body(message='{\r\n  "a": 1,\n  "b": [1, 2]\r\n}', fmt=0)).status_code == 200
    assert emu.received(ICCID, wait_for=1)[0]["payload"] == '{  "a": 1,  "b": [1, 2]}'
    assert emu.messages()[0]["message"] == '{\r\n  "a": 1,\n  "b": [1, 2]\r\n}'  # as sent


def test_format1_keeps_cr_lf(emu: EmulatorProcess) -> None:
    assert post(emu, body(message="line1\r\nline2\n", fmt=1)).status_code == 200
    assert emu.received(ICCID, wait_for=1)[0]["payload"] == "line1\r\nline2\n"


def test_limits_inclusive(emu: EmulatorProcess) -> None:
    assert post(emu, body(message="x" * 4096)).status_code == 200
    assert post(emu, body(message="é" * 2048)).status_code == 200  # 4096 bytes
    base = f"/DEMO/{ICCID}/sub"
    topic = "/" + "t" * (512 - len(base) - 1)
    assert len((base + topic).encode()) == 512
    assert post(emu, body(topic=topic)).status_code == 200
    assert post(emu, body(message="1")).status_code == 200
    assert len(emu.received(ICCID, wait_for=4)) == 4


def test_sequential_messages_arrive_in_order(emu: EmulatorProcess) -> None:
    for i in range(30):
        assert post(emu, body(message=f"m{i}", qos=i % 2)).status_code == 200
    got = emu.received(ICCID, wait_for=30)
    assert [m["payload"] for m in got] == [f"m{i}" for i in range(30)]
    assert [m["qos"] for m in got] == [i % 2 for i in range(30)]


def test_external_subscriber_gets_min_qos(emu: EmulatorProcess) -> None:
    """A real MQTT client subscribed at QoS 0 gets QoS 1 publishes at QoS 0 (MQTT 3.1.1 s. 3.8.4)."""
    import queue
    import threading

    import paho.mqtt.client as mqtt

    got: queue.Queue[tuple[str, int, bool, bytes]] = queue.Queue()
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, m: got.put((m.topic, m.qos, bool(m.retain), m.payload))
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(emu.mqtt_host or "127.0.0.1", emu.mqtt_port or 0)
    client.loop_start()
    try:
        client.subscribe(f"/DEMO/{ICCID}/sub/#", qos=0)
        assert subscribed.wait(10)
        assert post(emu, body(message="q1", qos=1, topic="/t")).status_code == 200
        assert got.get(timeout=10) == (f"/DEMO/{ICCID}/sub/t", 0, False, b"q1")
    finally:
        client.disconnect()
        client.loop_stop()
    assert emu.received(ICCID, wait_for=1)[0]["qos"] == 1  # the fleet subscribed at QoS 1


def test_wait_for_times_out_with_what_it_has(emu: EmulatorProcess) -> None:
    start = time.monotonic()
    assert emu.received(ICCID2, wait_for=1, timeout=0.3) == []
    assert 0.25 <= time.monotonic() - start < 5


def test_burst_all_delivered(emu: EmulatorProcess) -> None:
    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))
    url = f"{emu.api_url}/DEMO/Publish/Message"

    def send(i: int) -> int:
        payload = body(iccid=generated_iccid(i % 50), message=json.dumps({"seq": i}), fmt=0, qos=i % 2)
        return session.post(url, json=payload, headers={"X-API-Key": emu.api_key}, timeout=30).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(send, range(1000)))
    assert statuses == [200] * 1000
    counts = emu.received_counts(wait_total=1000, timeout=60)
    assert counts["total"] == 1000
    assert counts["by_device"] == {f"DEMO/{generated_iccid(d)}": 20 for d in range(50)}
    everything = emu.received_all()
    seqs = sorted(json.loads(m["payload"])["seq"] for msgs in everything.values() for m in msgs)
    assert seqs == list(range(1000))
    stats = emu.stats()
    assert stats["published"] == 1000 and stats["received"] == 1000 and stats["delivery_failures"] == 0


# ------------------------------------------------------------------ 400 errors

BAD_BODIES = [
    ("not-json", b'{"ICCID": ', "not valid JSON"),
    ("empty-body", b"", "empty"),
    ("array", b"[]", "JSON object"),
    ("bad-utf8", b'{"ICCID": "\xff"}', "UTF-8"),
]

BAD_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("missing-iccid", {"ICCID": None}, "Missing required field(s): ICCID"),
    ("missing-topic", {"Topic": None}, "Missing required field(s): Topic"),
    ("missing-message", {"Message": None}, "Missing required field(s): Message"),
    ("missing-qos", {"QoS": None}, "Missing required field(s): QoS"),
    ("missing-format", {"Format": None}, "Missing required field(s): Format"),
    ("extra-key", {"Retain": True}, "Unknown field(s): Retain"),
    ("iccid-int", {"ICCID": 8988280666000000000}, "ICCID must be a string"),
    ("iccid-letters", {"ICCID": "89ab"}, "ICCID must be 1 to 22 digits"),
    ("iccid-too-long", {"ICCID": "1" * 23}, "ICCID must be 1 to 22 digits"),
    ("qos-2", {"QoS": 2}, "QoS must be 0 or 1"),
    ("qos-bool", {"QoS": True}, "QoS must be an integer"),
    ("qos-str", {"QoS": "0"}, "QoS must be an integer"),
    ("qos-float", {"QoS": 1.0}, "QoS must be an integer"),
    ("format-2", {"Format": 2}, "Format must be 0 or 1"),
    ("format-bool", {"Format": False}, "Format must be an integer"),
    ("topic-no-slash", {"Topic": "config"}, "Topic must be empty or start with '/'"),
    ("topic-int", {"Topic": 5}, "Topic must be a string"),
    ("topic-plus", {"Topic": "/a/+/b"}, "'+'"),
    ("topic-hash", {"Topic": "/a/#"}, "'#'"),
    ("topic-nul", {"Topic": "/a\u0000b"}, "NUL"),
    ("topic-too-long", {"Topic": "/" + "t" * 600}, "limit is 512 bytes"),
    ("message-object", {"Message": {"a": 1}}, "Message must be a string"),
    ("message-empty", {"Message": ""}, "must not be empty"),
    ("message-too-long", {"Message": "x" * 4097}, "limit is 4096 bytes"),
    ("message-too-long-utf8", {"Message": "é" * 2049}, "4098 bytes"),
    ("format0-not-json", {"Message": "{not json", "Format": 0}, "not valid JSON text"),
    ("format0-nan", {"Message": "NaN", "Format": 0}, "not valid JSON text"),
    ("retain-str", {"RetainLastMessage": "yes"}, "RetainLastMessage must be a boolean"),
    ("retain-int", {"RetainLastMessage": 1}, "RetainLastMessage must be a boolean"),
]


@pytest.mark.parametrize("raw,fragment", [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES])
def test_400_malformed_body(emu: EmulatorProcess, raw: bytes, fragment: str) -> None:
    assert_error(post(emu, None, raw=raw), 400, fragment)
    assert emu.stats()["published"] == 0


@pytest.mark.parametrize("change,fragment", [b[1:] for b in BAD_FIELDS], ids=[b[0] for b in BAD_FIELDS])
def test_400_bad_field(emu: EmulatorProcess, change: dict[str, Any], fragment: str) -> None:
    payload = body()
    for key, value in change.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    assert_error(post(emu, payload), 400, fragment)
    assert emu.messages() == []
    assert emu.stats() == {**emu.stats(), "published": 0, "by_status": {"400": 1}}


def test_format1_message_need_not_be_json(emu: EmulatorProcess) -> None:
    assert post(emu, body(message="{not json", fmt=1)).status_code == 200


# ------------------------------------------------------------ 401 / 404

def test_401_wrong_key(emu: EmulatorProcess) -> None:
    assert_error(post(emu, body(), key="wrong"), 401)
    assert emu.messages() == []


def test_401_missing_key(emu: EmulatorProcess) -> None:
    resp = requests.post(f"{emu.api_url}/DEMO/Publish/Message", json=body(), timeout=10)
    assert_error(resp, 401)


def test_401_unknown_org(emu: EmulatorProcess) -> None:
    assert_error(post(emu, body(), org="NOPE"), 401)


def test_401_checked_before_body(emu: EmulatorProcess) -> None:
    assert_error(post(emu, None, key="wrong", raw=b"garbage"), 401)
    assert_error(post(emu, body(iccid="999"), key="wrong"), 401)


def test_404_unknown_iccid(emu: EmulatorProcess) -> None:
    assert_error(post(emu, body(iccid="8988280666099999999")), 404, "8988280666099999999")
    assert emu.stats()["by_status"] == {"404": 1}


def test_add_devices(emu: EmulatorProcess) -> None:
    assert post(emu, body(iccid="4242")).status_code == 404
    result = emu.add_devices(["4242"])
    assert result["added"] == 1
    assert post(emu, body(iccid="4242")).status_code == 200
    assert emu.received("4242", wait_for=1)[0]["topic"] == "/DEMO/4242/sub"


def test_other_api_paths_answer_json_404(emu: EmulatorProcess) -> None:
    # Device/Sim/Detail is an endpoint now; the vendor documents no device list.
    resp = requests.get(f"{emu.api_url}/DEMO/Devices", timeout=10)
    assert_error(resp, 404)


# ------------------------------------------------------------------ retained

def test_retained_message_reaches_late_subscriber(emu: EmulatorProcess) -> None:
    assert post(emu, body(message="old", topic="/cfg", qos=1, RetainLastMessage=True)).status_code == 200
    assert post(emu, body(message="new", topic="/cfg", qos=1, RetainLastMessage=True)).status_code == 200
    assert post(emu, body(message="live-only", topic="/other", qos=1)).status_code == 200
    assert post(emu, body(message="not-retained", topic="/x", qos=0, RetainLastMessage=False)).status_code == 200
    # the subscribed device saw all of them live (retain flag 0 on live delivery)
    live = emu.received(ICCID, wait_for=4)
    assert [m["payload"] for m in live] == ["old", "new", "live-only", "not-retained"]
    assert all(m["retain"] is False for m in live)
    late = emu.late_subscribe(ICCID)
    assert late == [{"topic": f"/DEMO/{ICCID}/sub/cfg", "payload": "new", "qos": 1, "retain": True}]
    assert emu.late_subscribe(ICCID2) == []


def test_retained_qos0_and_base_topic(emu: EmulatorProcess) -> None:
    assert post(emu, body(iccid=ICCID2, message="{\r\n}", fmt=0, qos=0, RetainLastMessage=True)).status_code == 200
    assert emu.late_subscribe(ICCID2) == [{"topic": f"/DEMO/{ICCID2}/sub", "payload": "{}", "qos": 0, "retain": True}]


def test_reset_clears_everything(emu: EmulatorProcess) -> None:
    assert post(emu, body(message="keep?", RetainLastMessage=True)).status_code == 200
    emu.received(ICCID, wait_for=1)
    emu.set_faults(latency_ms=5, script=[503])
    emu.reset()
    assert emu.messages() == []
    assert emu.received(ICCID) == []
    assert emu.received_counts() == {"total": 0, "by_device": {}}
    assert emu.stats()["requests"] == 0 and emu.stats()["by_status"] == {}
    assert emu.faults()["script"] == [] and emu.faults()["latency_ms"] == 0
    assert emu.late_subscribe(ICCID) == []
    assert emu.retained() == {}
    assert post(emu, body()).status_code == 200


# ------------------------------------------------------------------ faults

def test_scripted_503_503_then_200(emu: EmulatorProcess) -> None:
    emu.set_faults(script=[503, 503], retry_after=3)
    first = post(emu, body(message="once"))
    assert_error(first, 503)
    assert first.headers["Retry-After"] == "3"
    assert_error(post(emu, body(message="once")), 503)
    assert post(emu, body(message="once")).status_code == 200
    assert [m["payload"] for m in emu.received(ICCID, wait_for=1)] == ["once"]
    stats = emu.stats()
    assert stats["by_status"] == {"503": 2, "200": 1} and stats["published"] == 1 and stats["requests"] == 3
    assert len(emu.messages()) == 1


def test_scripted_other_statuses_and_dict_entry(emu: EmulatorProcess) -> None:
    emu.set_faults(script=[500, 502, 504, 400, {"status": 429, "retry_after": 7, "message": "slow down"}])
    for status in (500, 502, 504, 400):
        resp = assert_error(post(emu, body()), status)
        assert "injected" in resp["Message"]
    resp = post(emu, body())
    assert_error(resp, 429, "slow down")
    assert resp.headers["Retry-After"] == "7"
    assert post(emu, body()).status_code == 200
    assert emu.stats()["published"] == 1


def test_drop_closes_connection_without_response(emu: EmulatorProcess) -> None:
    emu.set_faults(script=["drop"])
    with pytest.raises(requests.ConnectionError):
        post(emu, body(message="dropped"))
    assert post(emu, body(message="after")).status_code == 200
    assert [m["payload"] for m in emu.received(ICCID, wait_for=1)] == ["after"]
    assert emu.stats()["dropped"] == 1 and emu.stats()["published"] == 1


def test_reset_fault_aborts_connection(emu: EmulatorProcess) -> None:
    emu.set_faults(script=["reset"])
    with pytest.raises(requests.ConnectionError):
        post(emu, body())
    assert post(emu, body()).status_code == 200


def test_hang_until_client_gives_up(emu: EmulatorProcess) -> None:
    emu.set_faults(script=["hang"])
    with pytest.raises(requests.ReadTimeout):
        post(emu, body(message="hung"), timeout=0.5)
    assert post(emu, body(message="after")).status_code == 200
    assert [m["payload"] for m in emu.received(ICCID, wait_for=1)] == ["after"]
    assert emu.stats()["hung"] == 1


def test_per_iccid_script(emu: EmulatorProcess) -> None:
    emu.set_faults(per_iccid={ICCID2: [500, "drop"]}, script=[503])
    assert_error(post(emu, body(iccid=ICCID2)), 500)  # per-ICCID wins over the global script
    with pytest.raises(requests.ConnectionError):
        post(emu, body(iccid=ICCID2))
    assert_error(post(emu, body(iccid=ICCID)), 503)  # global script still there
    assert post(emu, body(iccid=ICCID2)).status_code == 200
    assert post(emu, body(iccid=ICCID)).status_code == 200
    assert emu.faults()["per_iccid"] == {ICCID2: []}


def test_random_rates_seeded(emu: EmulatorProcess) -> None:
    emu.set_faults(rates={"503": 1.0})
    assert all(post(emu, body()).status_code == 503 for _ in range(5))
    emu.set_faults(rates={"500": 0.5}, seed=7)
    first = [post(emu, body()).status_code for _ in range(40)]
    emu.set_faults(rates={"500": 0.5}, seed=7)
    second = [post(emu, body()).status_code for _ in range(40)]
    assert first == second and set(first) == {200, 500}


def test_rate_limit_429_with_retry_after(emu: EmulatorProcess) -> None:
    emu.set_faults(rate_limit=2)
    statuses = []
    for _ in range(5):
        resp = post(emu, body())
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            assert int(resp.headers["Retry-After"]) >= 1
            assert_error(resp, 429, "rate limit")
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]
    assert emu.stats()["published"] == statuses.count(200)


def test_latency(emu: EmulatorProcess) -> None:
    emu.set_faults(latency_ms=300)
    start = time.monotonic()
    assert post(emu, body()).status_code == 200
    assert time.monotonic() - start >= 0.3


def test_faults_get_and_validation(emu: EmulatorProcess) -> None:
    settings = emu.set_faults(latency_ms=10, rates={"429": 0.25}, retry_after=2, script=[503, "drop"])
    assert settings == emu.faults()
    assert settings["rates"]["429"] == 0.25 and settings["script"] == [503, "drop"]
    emu.update_faults(rate_limit=100)
    assert emu.faults()["latency_ms"] == 10 and emu.faults()["rate_limit"] == 100
    for bad in ({"script": ["explode"]}, {"rates": {"503": 2}}, {"rates": {"418": 0.1}}, {"nope": 1},
                {"script": [200]}, {"rates": {"500": 0.6, "503": 0.6}}):
        with pytest.raises(EmulatorError, match="HTTP 400"):
            emu.set_faults(**bad)


# ------------------------------------------------------------- CLI / process

def test_cli_multiple_orgs_and_extra_devices() -> None:
    args = ["--org", "ACME", "--api-key", "acme-key", "--extra-device", "111", "222", "--extra-device", "333"]
    with EmulatorProcess(devices=2, org="DEMO", api_key="demo-api-key", extra_args=args) as proc:
        url = proc.api_url
        ok = requests.post(f"{url}/ACME/Publish/Message", json=body(iccid="333"), headers={"X-API-Key": "acme-key"}, timeout=10)
        assert ok.status_code == 200
        cross = requests.post(f"{url}/ACME/Publish/Message", json=body(), headers={"X-API-Key": "demo-api-key"}, timeout=10)
        assert cross.status_code == 401
        assert post(proc, body(iccid="111")).status_code == 200
        assert proc.received("333", org="ACME", wait_for=1)[0]["topic"] == "/ACME/333/sub"
        assert proc.device_count == 6


def test_cli_fault_flags_and_no_mqtt() -> None:
    args = ["--no-mqtt", "--fault-script", "503,drop", "--retry-after", "4", "--latency-ms", "1"]
    with EmulatorProcess(devices=1, extra_args=args) as proc:
        assert proc.mqtt_port is None
        resp = post(proc, body())
        assert resp.status_code == 503 and resp.headers["Retry-After"] == "4"
        with pytest.raises(requests.ConnectionError):
            post(proc, body())
        assert post(proc, body()).status_code == 200
        assert len(proc.messages()) == 1


def test_device_subscriber_dies_with_killed_emulator() -> None:
    import select

    proc = EmulatorProcess(devices=1)
    with proc:
        children = [int(c) for c in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
        assert children
        # pidfds become readable when the process exits: a blocking wait, no polling.
        pidfds = [os.pidfd_open(child) for child in children]
        os.kill(proc.pid, 9)
        proc.proc.wait(timeout=10)  # type: ignore[union-attr]
    try:
        for fd in pidfds:
            readable, _, _ = select.select([fd], [], [], 10)
            assert readable, "device subscriber outlived the killed emulator"
    finally:
        for fd in pidfds:
            os.close(fd)


def test_bad_cli_reports_stderr() -> None:
    with pytest.raises(EmulatorError, match="devices must be >= 0"):
        with EmulatorProcess(devices=-1):
            pass


def test_sigterm_stops_everything(tmp_path: Path) -> None:
    ready = tmp_path / "ready.json"
    proc = EmulatorProcess(devices=1, extra_args=["--ready-file", str(ready)])
    with proc:
        assert json.loads(ready.read_text())["pid"] == proc.pid
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        assert children, "device subscriber child expected"
    assert proc.proc is not None and proc.proc.returncode == 0
    assert not ready.exists()
    for child in children:
        assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI not available")
def test_tls(tmp_path: Path) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )
    with EmulatorProcess(devices=1, extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]) as proc:
        assert proc.api_url.startswith("https://")
        resp = requests.post(proc.publish_url, json=body(), headers={"X-API-Key": proc.api_key}, verify=str(cert), timeout=10)
        assert resp.status_code == 200
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(proc.publish_url, json=body(), headers={"X-API-Key": proc.api_key}, timeout=10)
