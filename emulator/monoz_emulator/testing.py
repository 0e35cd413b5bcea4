"""Run the emulator as a subprocess for tests, benchmarks and the demo.

Standard library only (urllib), so a test venv needs nothing extra for it:

    with EmulatorProcess(devices=10) as emu:
        requests.post(f"{emu.api_url}/{emu.org}/Publish/Message", ...)
        emu.received("12345678", wait_for=1)

The child is always stopped by its PID (SIGTERM, up to 10 s, then SIGKILL),
even when the body of the `with` raises.
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

EMULATOR_ROOT = Path(__file__).resolve().parent.parent  # the directory holding monoz_emulator/


class EmulatorError(RuntimeError):
    """The emulator failed to start or a control call failed."""


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
        return cmd + self.extra_args

    def start(self) -> EmulatorProcess:
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


def generated_iccid(index: int, prefix: str = "89882806660") -> str:
    """ICCID of the index-th generated device (matches the emulator's --devices list)."""
    return f"{prefix}{index:0{max(19 - len(prefix), 1)}d}"
