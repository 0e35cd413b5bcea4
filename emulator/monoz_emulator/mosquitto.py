"""Eclipse Mosquitto for tests: a private broker on a free loopback port, stopped by PID.

Standard library only (imported by testing.py):

    with MosquittoProcess() as broker:
        with EmulatorProcess(mqtt_broker=f"{broker.host}:{broker.port}") as emu:
            ...

The generated configuration listens on 127.0.0.1 only, allows anonymous
clients (devices do not authenticate on the 1NCE network either), keeps
nothing on disk, and sets `max_queued_messages 0` (no limit): mosquitto's
default of 1,000 drops QoS 1 messages queued for a subscriber that a
burst has fallen behind, which would make a fast push look lossy.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install -y mosquitto)"


class MosquittoError(RuntimeError):
    """mosquitto is missing or did not start."""


def mosquitto_binary() -> str | None:
    """The mosquitto executable: on PATH, or where Debian puts it (/usr/sbin is not on every PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MosquittoProcess:
    """Context manager: `mosquitto -c <generated config>` on a free 127.0.0.1 port."""

    host = "127.0.0.1"

    def __init__(self, binary: str | None = None, start_timeout: float = 15.0,
                 extra_config: list[str] | None = None) -> None:
        self.binary = binary
        self.start_timeout = start_timeout
        self.extra_config = list(extra_config or [])
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._dir: tempfile.TemporaryDirectory[str] | None = None
        self._log: deque[str] = deque(maxlen=2000)
        self._drain: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, "mosquitto is not running"
        return self.proc.pid

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def config_text(self, port: int) -> str:
        return "\n".join([
            f"listener {port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 0",
            "log_dest stderr",
            *self.extra_config,
        ]) + "\n"

    def start(self) -> MosquittoProcess:
        binary = self.binary or mosquitto_binary()
        if binary is None:
            raise MosquittoError(f"the mosquitto binary was not found on PATH or in /usr/sbin: {INSTALL_HINT}")
        self._dir = tempfile.TemporaryDirectory(prefix="monoz-mosquitto-")
        config = Path(self._dir.name) / "mosquitto.conf"
        last = ""
        for _attempt in range(5):  # the free port may be taken between our check and mosquitto's bind
            port = _free_port()
            config.write_text(self.config_text(port))
            try:
                self.proc = subprocess.Popen([binary, "-c", str(config)], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            except OSError as exc:
                self._cleanup()
                raise MosquittoError(f"cannot run {binary}: {exc.strerror}; {INSTALL_HINT}") from None
            ready, last = self._wait_running()
            if ready:
                self.port = port
                # Keep reading its log, or a full pipe would one day block the broker.
                self._drain = threading.Thread(target=self._drain_log, daemon=True)
                self._drain.start()
                return self
            self.stop()
            if "Address already in use" not in last:
                break
        self._cleanup()
        raise MosquittoError(f"mosquitto did not start: {last.strip() or 'no output'}")

    def _wait_running(self) -> tuple[bool, str]:
        """Read its log until 'running' (ready to accept connections), it exits, or the timeout."""
        assert self.proc is not None and self.proc.stderr is not None
        fd = self.proc.stderr.fileno()
        deadline = time.monotonic() + self.start_timeout
        text = ""
        while "running" not in text:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, text + f"\n(not running after {self.start_timeout} s)"
            readable, _, _ = select.select([fd], [], [], remaining)
            if readable:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return False, text
                text += chunk.decode("utf-8", errors="replace")
        self._log.extend(text.splitlines())
        return True, text

    def _drain_log(self) -> None:
        proc = self.proc
        if proc is None or proc.stderr is None:
            return
        for line in proc.stderr:
            self._log.append(line.decode("utf-8", errors="replace").rstrip())

    def log_text(self) -> str:
        return "\n".join(self._log)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM by PID, wait up to `timeout`, then SIGKILL. Returns the exit code."""
        proc = self.proc
        if proc is None:
            return None
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
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None
        if proc.stderr is not None:
            proc.stderr.close()
        return proc.returncode

    def _cleanup(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> MosquittoProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        try:
            self.stop()
        finally:
            self._cleanup()
