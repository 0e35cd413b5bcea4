"""The emulator on an external broker (Eclipse Mosquitto), and the cross-check against the embedded one.

`MosquittoProcess` starts Debian's mosquitto on a free loopback port with a
generated configuration and stops it by PID. The cross-check runs one set of
scenarios on each broker (QoS downgrade, retained on late subscribe,
retained replaced and cleared, reset-and-resubscribe, a 1,000-device push)
and requires identical device-side results; mosquitto is the reference, and
the expected values are MQTT 3.1.1's.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import requests

from emulator_test_support import BROKERS, api, assert_ok, publish
from monoz_emulator.testing import (EmulatorError, EmulatorProcess, MosquittoProcess, broker_from_env,
                                    generated_iccid, mosquitto_binary)

needs_mosquitto = pytest.mark.skipif("mosquitto" not in BROKERS,
                                     reason="MONOZ_TEST_BROKER=embedded: this machine runs without mosquitto")
PUSH_DEVICES = 1000


# ------------------------------------------------------------- MosquittoProcess

@needs_mosquitto
def test_mosquitto_process_starts_and_stops_by_pid() -> None:
    with MosquittoProcess() as broker:
        assert broker.host == "127.0.0.1" and broker.port > 0
        assert Path(f"/proc/{broker.pid}").exists()
        cmdline = Path(f"/proc/{broker.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].endswith(b"mosquitto")
        config = Path(cmdline[2].decode()).read_text()
        for line in (f"listener {broker.port} 127.0.0.1", "persistence false", "max_queued_messages 0"):
            assert line in config.splitlines()
        with socket.create_connection((broker.host, broker.port), timeout=5):
            pass
        pid = broker.pid
        assert "running" in broker.log_text()
    assert broker.proc is not None and broker.proc.returncode is not None
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


@needs_mosquitto
def test_mosquitto_listens_on_loopback_only() -> None:
    with MosquittoProcess() as broker:
        listening = [line.split() for line in Path("/proc/net/tcp").read_text().splitlines()[1:]]
        local = [fields[1] for fields in listening if fields[3] == "0A"]  # LISTEN
        mine = [addr for addr in local if int(addr.split(":")[1], 16) == broker.port]
        assert mine == ["0100007F:%04X" % broker.port]


def test_mosquitto_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import monoz_emulator.mosquitto as module

    monkeypatch.setattr(module, "mosquitto_binary", lambda: None)
    with pytest.raises(module.MosquittoError, match="apt-get install -y mosquitto"):
        MosquittoProcess().start()
    with pytest.raises(module.MosquittoError, match="cannot run"):
        MosquittoProcess(binary=str(tmp_path / "no-such-mosquitto")).start()


def test_broker_from_env() -> None:
    assert broker_from_env({"MONOZ_TEST_BROKER": "embedded"}) == "embedded"
    with pytest.raises(EmulatorError, match="use 'mosquitto' .* or 'embedded'"):
        broker_from_env({"MONOZ_TEST_BROKER": "rabbit"})
    if mosquitto_binary() is not None:
        assert broker_from_env({}) == "mosquitto" and broker_from_env({"MONOZ_TEST_BROKER": ""}) == "mosquitto"


def test_broker_from_env_without_mosquitto(monkeypatch: pytest.MonkeyPatch) -> None:
    import monoz_emulator.mosquitto as module
    import monoz_emulator.testing as testing

    monkeypatch.setattr(testing, "mosquitto_binary", lambda: None)
    monkeypatch.setattr(module, "mosquitto_binary", lambda: None)
    with pytest.raises(EmulatorError) as info:
        broker_from_env({})
    message = str(info.value)
    assert "apt-get install -y mosquitto" in message and "MONOZ_TEST_BROKER=embedded" in message
    assert broker_from_env({"MONOZ_TEST_BROKER": "embedded"}) == "embedded"
    with pytest.raises(EmulatorError, match="apt-get install"):
        with EmulatorProcess(devices=1, mqtt_broker="mosquitto") as _never:
            pass


# ---------------------------------------------------------- external broker mode

@needs_mosquitto
def test_emulator_on_external_mosquitto() -> None:
    with MosquittoProcess() as broker, EmulatorProcess(devices=3, mqtt_broker=broker.address) as emu:
        assert (emu.mqtt_host, emu.mqtt_port, emu.info["mqtt_broker"]) == ("127.0.0.1", broker.port, "external")
        iccid = generated_iccid(2)
        publish(emu, iccid, "via-mosquitto", topic="/x", qos=1)
        assert emu.received(iccid, wait_for=1) == [
            {"topic": f"/DEMO/{iccid}/sub/x", "payload": "via-mosquitto", "qos": 1, "retain": False}]
        # The emulator and its devices are ordinary clients of that broker.
        log = broker.log_text()
        assert log.count("New client connected") >= 3  # emulator, device fleet, uplink collector
    assert "Traceback" not in emu.stderr_text()


@needs_mosquitto
def test_qos1_200_means_the_broker_has_it() -> None:
    """The HTTP 200 of a QoS 1 publish comes after the broker's PUBACK; a broker that is gone gives a 500."""
    with MosquittoProcess() as broker, EmulatorProcess(devices=1, mqtt_broker=broker.address) as emu:
        iccid = generated_iccid(0)
        publish(emu, iccid, "before", qos=1, retain=True)
        assert emu.late_subscribe(iccid)[0]["payload"] == "before"
        broker.stop()
        for qos in (1, 0):
            resp = api(emu, "POST", "Publish/Message", {"ICCID": iccid, "Topic": "", "Message": "lost", "QoS": qos,
                                                        "Format": 1})
            assert resp.status_code == 500, resp.text
            assert "MQTT publish failed" in resp.json()["Message"]
        assert emu.stats()["delivery_failures"] == 2 and emu.stats()["published"] == 1


@needs_mosquitto
def test_emulator_owns_its_mosquitto() -> None:
    with EmulatorProcess(devices=1, mqtt_broker="mosquitto") as emu:
        broker = emu.mosquitto
        assert broker is not None and emu.mqtt_port == broker.port
        pid = broker.pid
        publish(emu, generated_iccid(0), "own", qos=1)
        assert emu.received(generated_iccid(0), wait_for=1)[0]["payload"] == "own"
    assert emu.mosquitto is None
    assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]


def test_bad_mqtt_broker_option() -> None:
    with pytest.raises(EmulatorError, match="expected HOST:PORT"):
        with EmulatorProcess(devices=1, mqtt_broker="localhost"):
            pass
    with pytest.raises(EmulatorError, match="exclude each other"):
        with EmulatorProcess(devices=1, mqtt_broker="127.0.0.1:1", extra_args=["--no-mqtt"]):
            pass


# ------------------------------------------------------------------ cross-check

def _subscriber(emu: EmulatorProcess, topic_filter: str, qos: int) -> tuple[mqtt.Client, "queue.Queue[Any]"]:
    got: queue.Queue[Any] = queue.Queue()
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"x-{os.getpid()}-{threading.get_ident()}-{qos}")
    client.on_message = lambda _c, _u, m: got.put((m.topic, m.payload.decode(), m.qos, bool(m.retain)))
    client.on_subscribe = lambda *_a: subscribed.set()
    client.connect(emu.mqtt_host or "127.0.0.1", emu.mqtt_port or 0)
    client.loop_start()
    client.subscribe(topic_filter, qos=qos)
    assert subscribed.wait(10), "no SUBACK"
    return client, got


def _drain(got: "queue.Queue[Any]", count: int) -> list[Any]:
    return [got.get(timeout=20) for _ in range(count)]


def _short(messages: list[dict[str, Any]]) -> list[tuple[str, str, int, bool]]:
    return [(m["topic"].split("/sub", 1)[1], m["payload"], m["qos"], m["retain"]) for m in messages]


def run_scenarios(broker: str) -> dict[str, Any]:
    """Every scenario on one broker; returns the device-side results (nothing broker-specific in them)."""
    out: dict[str, Any] = {}
    i = generated_iccid
    with EmulatorProcess(devices=PUSH_DEVICES, mqtt_broker=broker, start_timeout=120) as emu:
        # QoS downgrade: a subscriber gets min(publish QoS, subscription QoS).
        sub0, got0 = _subscriber(emu, f"/DEMO/{i(0)}/sub/#", 0)
        sub1, got1 = _subscriber(emu, f"/DEMO/{i(0)}/sub/#", 1)
        try:
            publish(emu, i(0), "q1", qos=1)
            publish(emu, i(0), "q0", qos=0)
            out["qos_subscribed_0"] = sorted((p, q) for _t, p, q, _r in _drain(got0, 2))
            out["qos_subscribed_1"] = sorted((p, q) for _t, p, q, _r in _drain(got1, 2))
        finally:
            for client in (sub0, sub1):
                client.disconnect()
                client.loop_stop()
        out["qos_device"] = _short(emu.received(i(0), wait_for=2))

        # Retained on a late subscribe, at min(retained QoS, subscription QoS).
        publish(emu, i(1), "r-q1", topic="/a", qos=1, retain=True)
        publish(emu, i(1), "r-q0", topic="/b", qos=0, retain=True)
        publish(emu, i(1), "live", topic="/c", qos=1)
        out["late_subscribe"] = sorted(_short(emu.late_subscribe(i(1))))
        late0, got_late0 = _subscriber(emu, f"/DEMO/{i(1)}/sub/#", 0)
        try:
            out["late_subscribe_qos0"] = sorted((t.split("/sub", 1)[1], p, q, r) for t, p, q, r in _drain(got_late0, 2))
        finally:
            late0.disconnect()
            late0.loop_stop()

        # Retained replaced, then cleared by the emulator's reset.
        publish(emu, i(2), "v1", topic="/cfg", qos=1, retain=True)
        publish(emu, i(2), "v2", topic="/cfg", qos=1, retain=True)
        out["replaced"] = _short(emu.late_subscribe(i(2)))
        assert emu.sync()
        out["replaced_live"] = _short(emu.received(i(2)))
        emu.reset()
        out["cleared"] = (emu.late_subscribe(i(2)), emu.retained())

        # Reset and re-subscribe; disable and enable.
        publish(emu, i(3), "cfg-3", topic="/cfg", qos=1, retain=True)
        emu.received(i(3), wait_for=1)
        assert_ok(api(emu, "PUT", "Sim/Reset", {"ICCID": i(3)}), "UpdateSuccess")
        publish(emu, i(3), "after-reset", qos=0)
        assert emu.sync()
        out["reset"] = _short(emu.received(i(3)))
        assert_ok(api(emu, "PUT", "Sim/Enable", {"ICCID": i(3), "Enable": False}), "UpdateSuccess")
        publish(emu, i(3), "while-off", qos=1)
        assert_ok(api(emu, "PUT", "Sim/Enable", {"ICCID": i(3), "Enable": True}), "UpdateSuccess")
        assert emu.sync()
        out["reenabled"] = _short(emu.received(i(3)))[len(out["reset"]):]
        out["reset_state"] = emu.device_state(i(3))

        # A 1,000-device push at mixed QoS: every device exactly once, at its QoS.
        emu.reset()
        session = requests.Session()
        session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=16))

        def send(n: int) -> int:
            body = {"ICCID": i(n), "Topic": "/fw", "Message": json.dumps({"n": n}), "QoS": n % 2, "Format": 0}
            return session.post(emu.publish_url, json=body, headers={"X-API-Key": emu.api_key}, timeout=60).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(send, range(PUSH_DEVICES)))
        assert statuses == [200] * PUSH_DEVICES
        assert emu.sync(timeout=60)
        everything = emu.received_all()
        out["push"] = {
            "devices": len(everything),
            "exactly_once": sum(len(msgs) == 1 for msgs in everything.values()),
            "right": sum(
                msgs[0]["payload"] == json.dumps({"n": n}) and msgs[0]["qos"] == n % 2 and not msgs[0]["retain"]
                for n in range(PUSH_DEVICES) for msgs in [everything.get(f"DEMO/{i(n)}", [{}] * 2)] if len(msgs) == 1),
        }
        assert "Traceback" not in emu.stderr_text(), emu.stderr_text()
    return out


EXPECTED: dict[str, Any] = {
    "qos_subscribed_0": [("q0", 0), ("q1", 0)],
    "qos_subscribed_1": [("q0", 0), ("q1", 1)],
    "qos_device": [("", "q1", 1, False), ("", "q0", 0, False)],
    "late_subscribe": [("/a", "r-q1", 1, True), ("/b", "r-q0", 0, True)],
    "late_subscribe_qos0": [("/a", "r-q1", 0, True), ("/b", "r-q0", 0, True)],
    "replaced": [("/cfg", "v2", 1, True)],
    "replaced_live": [("/cfg", "v1", 1, False), ("/cfg", "v2", 1, False)],
    "cleared": ([], {}),
    "reset": [("/cfg", "cfg-3", 1, False), ("/cfg", "cfg-3", 1, True), ("", "after-reset", 0, False)],
    "reenabled": [("/cfg", "cfg-3", 1, True)],
    "reset_state": {"org": "DEMO", "iccid": generated_iccid(3), "enabled": True, "connects": 3,
                    "ul_message_count": 0, "dl_message_count": 3},
    "push": {"devices": PUSH_DEVICES, "exactly_once": PUSH_DEVICES, "right": PUSH_DEVICES},
}


@pytest.fixture(scope="module")
def results() -> Iterator[dict[str, dict[str, Any]]]:
    yield {broker: run_scenarios(broker) for broker in BROKERS}


@pytest.mark.parametrize("broker", BROKERS)
def test_scenarios_match_mqtt(results: dict[str, dict[str, Any]], broker: str) -> None:
    got = results[broker]
    mismatches = {key: (got.get(key), value) for key, value in EXPECTED.items()
                  if _plain(got.get(key)) != _plain(value)}
    assert not mismatches, f"{broker}: (got, expected) {mismatches}"


@needs_mosquitto
def test_cross_check_identical_on_both_brokers(results: dict[str, dict[str, Any]]) -> None:
    assert _plain(results["embedded"]) == _plain(results["mosquitto"])


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value))
