"""Run the emulator as a subprocess for tests, benchmarks and the demo.

Standard library only (urllib), so a test venv needs nothing extra for it:

    with EmulatorProcess(devices=10) as emu:
        requests.post(f"{emu.api_url}/{emu.org}/Publish/Message", ...)
        emu.received("12345678", wait_for=1)

The child is always stopped by its PID (SIGTERM, up to 10 s, then SIGKILL),
even when the body of the `with` raises.

`mqtt_broker` picks the MQTT broker: None or "embedded" (amqtt, in the
emulator), "HOST:PORT" (an external broker, e.g. a `MosquittoProcess`), or
"mosquitto" (a private `MosquittoProcess` started and stopped with the
emulator). `broker_from_env()` reads the test suites' MONOZ_TEST_BROKER.
"""

from __future__ import annotations

import json
import os
import select
import signal
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .mosquitto import INSTALL_HINT, MosquittoError, MosquittoProcess, mosquitto_binary

__all__ = ["EmulatorError", "EmulatorProcess", "MosquittoError", "MosquittoProcess", "broker_from_env",
           "generated_iccid", "mosquitto_binary"]

EMULATOR_ROOT = Path(__file__).resolve().parent.parent  # the directory holding monoz_emulator/


class EmulatorError(RuntimeError):
    """The emulator failed to start or a control call failed."""


TEST_BROKER_VARIABLE = "MONOZ_TEST_BROKER"
TEST_BROKERS = ("mosquitto", "embedded")


def broker_from_env(environ: Any = None) -> str:
    """The broker the device-side test suites use: MONOZ_TEST_BROKER, unset meaning "mosquitto".

    Raises EmulatorError, with what to do, when the value is unknown or when
    mosquitto is asked for and not installed.
    """
    value = (os.environ if environ is None else environ).get(TEST_BROKER_VARIABLE, "") or "mosquitto"
    if value not in TEST_BROKERS:
        raise EmulatorError(f"{TEST_BROKER_VARIABLE}={value!r}: use 'mosquitto' (the default) or 'embedded'")
    if value == "mosquitto" and mosquitto_binary() is None:
        raise EmulatorError(
            f"{TEST_BROKER_VARIABLE} is unset or 'mosquitto', so the device-side tests run against Eclipse "
            f"Mosquitto, but the mosquitto binary was not found on PATH or in /usr/sbin: {INSTALL_HINT}, "
            f"or run them against the emulator's embedded broker with {TEST_BROKER_VARIABLE}=embedded"
        )
    return value


class EmulatorProcess:
    """Context manager: start `python -m monoz_emulator` on free ports, stop it by PID."""

    def __init__(
        self,
        devices: int = 10,
        org: str = "DEMO",
        api_key: str = "demo-api-key",
        latency_ms: float = 0,
        extra_args: list[str] | None = None,
        python: str = sys.executable,
        start_timeout: float = 30.0,
        port: int = 0,
        mqtt_port: int = 0,
        mqtt_broker: str | None = None,
    ) -> None:
        self.devices = devices
        self.org = org
        self.api_key = api_key
        self.latency_ms = latency_ms
        self.extra_args = list(extra_args or [])
        self.python = python
        self.start_timeout = start_timeout
        self.port = port
        self.requested_mqtt_port = mqtt_port
        self.mqtt_broker = mqtt_broker
        self.mosquitto: MosquittoProcess | None = None  # ours when mqtt_broker="mosquitto"
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: dict[str, Any] = {}
        self._stderr: Any = None

    # -- lifecycle ---------------------------------------------------------
    @property
    def command(self) -> list[str]:
        cmd = [
            self.python, "-m", "monoz_emulator",
            "--host", "127.0.0.1", "--port", str(self.port), "--mqtt-port", str(self.requested_mqtt_port),
            "--org", self.org, "--api-key", self.api_key, "--devices", str(self.devices),
        ]
        if self.latency_ms:
            cmd += ["--latency-ms", str(self.latency_ms)]
        if self.mosquitto is not None:
            cmd += ["--mqtt-broker", self.mosquitto.address]
        elif self.mqtt_broker not in (None, "embedded", "mosquitto"):
            cmd += ["--mqtt-broker", str(self.mqtt_broker)]
        return cmd + self.extra_args

    def start(self) -> EmulatorProcess:
        if self.mqtt_broker == "mosquitto":
            try:
                self.mosquitto = MosquittoProcess().start()
            except MosquittoError as exc:
                raise EmulatorError(str(exc)) from None
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(EMULATOR_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        # stderr goes to a file: a pipe nobody reads would eventually block the child.
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
        )
        try:
            self.info = self._read_ready_line()
        except BaseException:
            self.stop()
            raise
        return self

    def _read_ready_line(self) -> dict[str, Any]:
        assert self.proc is not None and self.proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise EmulatorError(f"emulator not ready within {self.start_timeout} s; stderr:\n{self.stderr_text()}")
            readable, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:  # EOF: the child died
                    self.proc.wait(timeout=5)
                    raise EmulatorError(
                        f"emulator exited with {self.proc.returncode} before ready; stderr:\n{self.stderr_text()}"
                    )
                buf += chunk
            elif self.proc.poll() is not None:
                raise EmulatorError(f"emulator exited with {self.proc.returncode} before ready; stderr:\n{self.stderr_text()}")
        line = buf.split(b"\n", 1)[0]
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            raise EmulatorError(f"unexpected ready line {line!r}; stderr:\n{self.stderr_text()}") from None
        # stdout stays open but unread afterwards: the emulator prints nothing more.

    def stderr_text(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        return self._stderr.read().decode("utf-8", errors="replace")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM by PID, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        proc = self.proc
        if proc is None:
            if self.mosquitto is not None:
                self.mosquitto.__exit__(None, None, None)
                self.mosquitto = None
            return None
        try:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    try:
                        os.kill(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    proc.wait(timeout=10)
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
            if self.mosquitto is not None:
                self.mosquitto.__exit__(None, None, None)  # after the emulator: it stops by PID too
                self.mosquitto = None
        return proc.returncode

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        try:
            self.stop()
        finally:
            if self._stderr is not None:
                self._stderr.close()
                self._stderr = None

    # -- ready info --------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.info["api_url"]

    @property
    def control_url(self) -> str:
        return self.info["control_url"]

    @property
    def publish_url(self) -> str:
        return f"{self.api_url}/{urllib.parse.quote(self.org, safe='')}/Publish/Message"

    @property
    def pid(self) -> int:
        return self.info["pid"]

    @property
    def mqtt_port(self) -> int | None:
        return self.info.get("mqtt_port")

    @property
    def mqtt_host(self) -> str | None:
        return self.info.get("mqtt_host")

    @property
    def device_count(self) -> int:
        return self.info["devices"]

    # -- control helpers ----------------------------------------------------
    def _call(self, method: str, path: str, body: Any = None, query: dict[str, Any] | None = None,
              timeout: float = 30.0) -> Any:
        url = self.control_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        # --tls-cert runs usually use a self-signed cert; this is our own loopback child.
        context = ssl._create_unverified_context() if url.startswith("https:") else None  # noqa: S323
        try:
            with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise EmulatorError(f"{method} {path} -> HTTP {exc.code}: {exc.read().decode(errors='replace')}") from None

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")

    def received(self, iccid: str, wait_for: int | None = None, timeout: float = 10, org: str | None = None) -> list[dict[str, Any]]:
        """Messages device (org, iccid) received over MQTT; blocks for `wait_for` of them (up to timeout)."""
        org_q = urllib.parse.quote(org or self.org, safe="")
        path = f"/devices/{org_q}/{urllib.parse.quote(iccid, safe='')}/received"
        query = {"wait_for": wait_for, "timeout": timeout} if wait_for is not None else None
        return self._call("GET", path, query=query, timeout=timeout + 30)["received"]

    def received_counts(self, wait_total: int | None = None, timeout: float = 30) -> dict[str, Any]:
        """{"total": n, "by_device": {"ORG/ICCID": n}}; blocks for `wait_total` messages (up to timeout)."""
        query = {"wait_total": wait_total, "timeout": timeout} if wait_total is not None else None
        return self._call("GET", "/received", query=query, timeout=timeout + 30)

    def received_all(self) -> dict[str, list[dict[str, Any]]]:
        return self._call("GET", "/received/all")

    def messages(self, iccid: str | None = None) -> list[dict[str, Any]]:
        return self._call("GET", "/messages", query={"iccid": iccid} if iccid else None)

    def stats(self) -> dict[str, Any]:
        return self._call("GET", "/stats")

    def faults(self) -> dict[str, Any]:
        return self._call("GET", "/faults")

    def set_faults(self, **settings: Any) -> dict[str, Any]:
        """Replace the fault settings (unspecified keys go back to defaults)."""
        return self._call("PUT", "/faults", body=settings)

    def update_faults(self, **settings: Any) -> dict[str, Any]:
        """Merge into the current fault settings."""
        return self._call("PATCH", "/faults", body=settings)

    def reset(self) -> dict[str, Any]:
        return self._call("POST", "/reset", body={})

    def add_devices(self, iccids: list[str], org: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/devices", body={"org": org or self.org, "iccids": list(iccids)})

    def late_subscribe(self, iccid: str, org: str | None = None) -> list[dict[str, Any]]:
        """Retained messages a device subscribing now would get."""
        org_q = urllib.parse.quote(org or self.org, safe="")
        return self._call("POST", f"/devices/{org_q}/{urllib.parse.quote(iccid, safe='')}/late-subscribe", body={})["received"]

    def retained(self) -> dict[str, str]:
        return self._call("GET", "/retained")

    def sync(self, timeout: float = 30) -> bool:
        """Block until every downlink published before now has reached the simulated devices."""
        return self._call("POST", "/sync", body={}, query={"timeout": timeout}, timeout=timeout + 30)["ok"]

    # -- SIM state, uplinks, webhook -------------------------------------------
    def _device_path(self, iccid: str, org: str | None) -> str:
        return f"/devices/{urllib.parse.quote(org or self.org, safe='')}/{urllib.parse.quote(iccid, safe='')}"

    def device_state(self, iccid: str, org: str | None = None) -> dict[str, Any]:
        """{"iccid", "enabled", "connects", "ul_message_count", "dl_message_count"} of a device."""
        return self._call("GET", self._device_path(iccid, org))

    def uplink(self, iccid: str, payload: str, topic: str | None = None, qos: int = 0,
               org: str | None = None) -> dict[str, Any]:
        """The device publishes an uplink over MQTT; returns the record the emulator stored."""
        body: dict[str, Any] = {"payload": payload, "qos": qos}
        if topic is not None:
            body["topic"] = topic
        return self._call("POST", self._device_path(iccid, org) + "/uplink", body=body, timeout=60)["record"]

    def uplinks(self, payload: str, iccids: list[str] | None = None, topic: str | None = None, qos: int = 0,
                org: str | None = None) -> list[dict[str, Any]]:
        """Several devices (default: every enabled one) publish at once; returns the stored records."""
        body: dict[str, Any] = {"org": org or self.org, "payload": payload, "qos": qos}
        if iccids is not None:
            body["iccids"] = list(iccids)
        if topic is not None:
            body["topic"] = topic
        return self._call("POST", "/uplinks", body=body, timeout=90)["records"]

    def set_webhook(self, url: str | None, headers: dict[str, str] | None = None, use_topic: bool = False,
                    timeout: float | None = None, block_after: int | None = None) -> dict[str, Any]:
        """Configure where uplinks are pushed (None: nowhere); header values are masked in the answer."""
        body: dict[str, Any] = {"url": url, "headers": dict(headers or {}), "use_topic": use_topic}
        if timeout is not None:
            body["timeout"] = timeout
        if block_after is not None:
            body["block_after"] = block_after
        return self._call("PUT", "/webhook", body=body)

    def webhook(self, wait_idle: bool = False, timeout: float = 30) -> dict[str, Any]:
        """Webhook settings and counters; with wait_idle, once nothing is queued or being pushed."""
        query = {"wait_idle": 1, "timeout": timeout} if wait_idle else None
        return self._call("GET", "/webhook", query=query, timeout=timeout + 30)

    def unblock_webhook(self) -> dict[str, Any]:
        return self._call("POST", "/webhook/unblock", body={})


def generated_iccid(index: int, prefix: str = "89882806660") -> str:
    """ICCID of the index-th generated device (matches the emulator's --devices list)."""
    return f"{prefix}{index:0{max(19 - len(prefix), 1)}d}"
