"""Shared machinery of the reliability tests and of chaos_push.py (no pytest here).

- ``collections_root(dir)``: ``dir/ansible_collections/monoz/link`` -> the repository root.
- ``Ansible``: runs ``tests/reliability/playbooks/*.yml`` with the
  ansible-playbook beside ``sys.executable``, at ``-vvv`` by default, with
  ``ANSIBLE_LOG_PATH`` set to a file of its own; after every run it checks
  that no secret it was told about appears in stdout, stderr, the log, the
  registered result or any file the caller names (journal, report).
- ``EmulatorProcess``: the emulator's, on the broker MONOZ_TEST_BROKER names:
  unless given one, each emulator gets a mosquitto of its own (started and
  stopped with it, by PID); with MONOZ_TEST_BROKER=embedded, the embedded one.
- ``Emu``: an ``EmulatorProcess`` plus waits that replace sleeps: ``quiesce``
  (no request in flight at the emulator) and ``barrier`` (every message
  published before now has reached the simulated devices).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

REL_DIR = Path(__file__).resolve().parent
REPO_ROOT = REL_DIR.parent.parent  # the repository root is the collection root
PLAYBOOKS = REL_DIR / "playbooks"
EMULATOR_DIR = REPO_ROOT / "emulator"
if str(EMULATOR_DIR) not in sys.path:
    sys.path.insert(0, str(EMULATOR_DIR))

# EmulatorError and MosquittoProcess are re-exported for conftest.py.
from monoz_emulator.testing import EmulatorError, MosquittoProcess, broker_from_env, generated_iccid  # noqa: E402,F401
from monoz_emulator.testing import EmulatorProcess as _EmulatorProcess  # noqa: E402

# The isolated ansible-playbook environment is the e2e suite's.
E2E_DIR = REL_DIR.parent / "e2e"
if str(E2E_DIR) not in sys.path:
    sys.path.insert(0, str(E2E_DIR))

from e2e_support import isolated_ansible_env, local_controller_files  # noqa: E402

ORG = "DEMO"
# Distinctive, so a search of every output for it cannot hit anything else.
API_KEY = "rel-K3y-5ecret-4b9d0e7f1a"
WRONG_KEY = "rel-Wr0ng-K3y-c0ffee5e77"
SECRETS = (API_KEY, WRONG_KEY)
# The vendor's example ICCID, registered by the emulator and used by no test
# as a target: the ordering barrier (see Emu.barrier).
BARRIER_ICCID = "12345678"
PLAYBOOK_TIMEOUT_S = 600
PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
              "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")


def iccid(index: int) -> str:
    return generated_iccid(index)


def broker_choice() -> str:
    """"mosquitto" (MONOZ_TEST_BROKER unset or "mosquitto") or "embedded"; EmulatorError when mosquitto is missing."""
    return broker_from_env()


class EmulatorProcess(_EmulatorProcess):
    """The emulator on the test broker: given none, a mosquitto of its own (or the embedded one, if asked)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("mqtt_broker") is None:
            kwargs["mqtt_broker"] = broker_choice()
        super().__init__(*args, **kwargs)


def collections_root(directory: Path) -> Path:
    """``directory/ansible_collections/monoz/link`` -> the repository root; returns directory."""
    namespace = directory / "ansible_collections" / "monoz"
    namespace.mkdir(parents=True, exist_ok=True)
    link = namespace / "link"
    if not link.exists():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    return directory


def find_secrets(text: str, secrets: tuple[str, ...] = SECRETS) -> list[str]:
    return [secret for secret in secrets if secret and secret in text]


def assert_no_secret(where: str, text: str, secrets: tuple[str, ...] = SECRETS) -> None:
    found = find_secrets(text, secrets)
    if found:
        index = text.find(found[0])
        context = text[max(0, index - 300): index + 100]
        raise AssertionError(f"API key found in {where}:\n...{context}...")


def assert_no_secret_in_file(path: Path, secrets: tuple[str, ...] = SECRETS) -> None:
    if path.exists():
        assert_no_secret(str(path), path.read_bytes().decode("utf-8", errors="replace"), secrets)


# --- ansible-playbook -------------------------------------------------------------
@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    log: str
    result: dict[str, Any]
    elapsed: float
    command: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def describe(self) -> str:
        return (
            f"rc={self.rc} elapsed={self.elapsed:.1f}s command={' '.join(self.command)}"
            f"\n--- stdout (tail) ---\n{self.stdout[-6000:]}\n--- stderr (tail) ---\n{self.stderr[-3000:]}"
        )


class Ansible:
    """Runs the playbooks of tests/reliability/playbooks against the emulator."""

    def __init__(self, collections: Path, workdir: Path, execution: str | None = None, verbosity: int = 3,
                 secrets: tuple[str, ...] = SECRETS) -> None:
        self.collections = collections
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.execution = execution
        self.verbosity = verbosity
        self.secrets = secrets
        self.bin = Path(sys.executable).parent / "ansible-playbook"
        self.inventory, self.config = local_controller_files(workdir)
        self.runs = 0
        self.checked_runs: list[PlaybookRun] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        # Proxy and CA variables of the machine must not reach the module either.
        env = isolated_ansible_env(self.collections, self.workdir, self.config, self.execution, drop=PROXY_VARS)
        env.update(
            ANSIBLE_LOG_PATH=str(self.workdir / f"ansible-{self.runs}.log"),
            PYTHONDONTWRITEBYTECODE="1",
        )
        env.update(extra or {})
        return env

    def _prepare(self, playbook: str, extra_vars: dict[str, Any], check: bool,
                 verbosity: int | None) -> tuple[list[str], Path, Path]:
        self.runs += 1
        vars_file = self.workdir / f"vars-{self.runs}.json"
        result_file = self.workdir / f"result-{self.runs}.json"
        vars_file.write_text(json.dumps({**extra_vars, "rel_result_path": str(result_file)}))
        command = [str(self.bin), "-i", str(self.inventory), str(PLAYBOOKS / playbook), "-e", f"@{vars_file}"]
        if check:
            command.append("--check")
        level = self.verbosity if verbosity is None else verbosity
        if level:
            command.append("-" + "v" * level)
        return command, result_file, self.workdir / f"ansible-{self.runs}.log"

    def run(self, playbook: str, extra_vars: dict[str, Any], env: dict[str, str] | None = None,
            check: bool = False, verbosity: int | None = None, secret_files: tuple[Path, ...] = (),
            timeout: float = PLAYBOOK_TIMEOUT_S) -> PlaybookRun:
        command, result_file, log_file = self._prepare(playbook, extra_vars, check, verbosity)
        started = time.monotonic()
        proc = subprocess.run(command, cwd=self.workdir, env=self.env(env), stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=timeout, check=False)
        elapsed = time.monotonic() - started
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        log = log_file.read_text(errors="replace") if log_file.exists() else ""
        run = PlaybookRun(proc.returncode, proc.stdout, proc.stderr, log, result, elapsed, command)
        self.check_secrets(run, result_file, secret_files)
        return run

    def start(self, playbook: str, extra_vars: dict[str, Any], env: dict[str, str] | None = None,
              verbosity: int | None = 0) -> tuple[subprocess.Popen, Path]:
        """Start ansible-playbook in its own process group (for kill -9); returns (proc, log path)."""
        command, _result_file, log_file = self._prepare(playbook, extra_vars, False, verbosity)
        out = open(self.workdir / f"stdout-{self.runs}.txt", "wb")  # noqa: SIM115 - closed by the caller's kill
        try:
            proc = subprocess.Popen(command, cwd=self.workdir, env=self.env(env), stdin=subprocess.DEVNULL,
                                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            out.close()
        return proc, log_file

    def check_secrets(self, run: PlaybookRun, result_file: Path | None = None,
                      secret_files: tuple[Path, ...] = ()) -> None:
        assert_no_secret("ansible-playbook stdout", run.stdout, self.secrets)
        assert_no_secret("ansible-playbook stderr", run.stderr, self.secrets)
        assert_no_secret("ANSIBLE_LOG_PATH log", run.log, self.secrets)
        if result_file is not None:
            assert_no_secret_in_file(result_file, self.secrets)
        for path in secret_files:
            assert_no_secret_in_file(Path(path), self.secrets)
        self.checked_runs.append(run)


def _proc_table() -> dict[int, tuple[int, int, int]]:
    """pid -> (ppid, pgid, sid) of every process we can see."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read().decode("latin-1")
        except OSError:
            continue
        # "pid (comm) state ppid pgrp session ..."; comm may hold spaces or parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        table[int(entry)] = (int(fields[1]), int(fields[2]), int(fields[3]))
    return table


def _tree(root: int) -> set[int]:
    """root, its descendants, and every process in a session or group one of them leads.

    ansible-core's workers call setsid(), so they are not in ansible-playbook's
    process group: killing that group alone leaves them pushing as orphans.
    A module process a worker starts stays in the worker's session.
    """
    table = _proc_table()
    members = {root} if root in table else set()
    while True:
        grown = {pid for pid, (ppid, pgid, sid) in table.items()
                 if pid not in members and (ppid in members or pgid in members or sid in members)}
        if not grown:
            return members
        members |= grown


def kill_process_group(proc: subprocess.Popen, sig: int = signal.SIGKILL) -> None:
    """SIGKILL the child's whole tree: its process group and every detached worker, then reap.

    The tree is collected before anything dies (orphans lose their parent
    link), then collected again until nothing of it is left; bounded.
    """
    victims: set[int] = set()
    for _round in range(20):
        found = _tree(proc.pid) | set(_tree_by_ids(victims))
        found.discard(os.getpid())
        alive = {pid for pid in found if _alive(pid)}
        if not alive:
            break
        victims |= alive
        for pid in alive:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        if proc.poll() is not None and not any(_alive(pid) for pid in victims if pid != proc.pid):
            break
    proc.wait(timeout=30)


def _tree_by_ids(pids: set[int]) -> set[int]:
    """Processes (orphans included) whose group or session is one of ``pids``."""
    if not pids:
        return set()
    return {pid for pid, (_ppid, pgid, sid) in _proc_table().items() if pgid in pids or sid in pids}


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read().decode("latin-1")
    except OSError:
        return False
    return stat[stat.rfind(")") + 2:].split()[0] != "Z"  # a zombie is dead, only not yet reaped


# --- the emulator ----------------------------------------------------------------
class Emu:
    """An EmulatorProcess plus waits on conditions (never fixed sleeps)."""

    def __init__(self, process: EmulatorProcess, api_key: str = API_KEY) -> None:
        self.process = process
        self.api_key = api_key
        self._barriers = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.process, name)

    def reset(self) -> None:
        self.process.reset()
        self._barriers = 0

    def creds(self, **overrides: Any) -> dict[str, Any]:
        return {"rel_org_id": self.process.org, "rel_api_key": self.api_key, "rel_api_url": self.process.api_url,
                **overrides}

    def in_flight(self) -> int:
        stats = self.process.stats()
        done = sum(stats["by_status"].values()) + stats["dropped"] + stats["hung"]
        return stats["requests"] - done

    def quiesce(self, timeout: float = 30, abandoned: int = 0) -> None:
        """Wait until every request the emulator has seen is answered (or dropped).

        ``abandoned``: requests of a killed client known never to complete
        (see quiesce_after_kill).
        """
        deadline = time.monotonic() + timeout
        while self.in_flight() > abandoned:
            if time.monotonic() > deadline:
                raise AssertionError(f"emulator still has requests in flight after {timeout}s: {self.process.stats()}")
            time.sleep(0.02)  # polling a condition with a deadline, not a synchronisation sleep

    def quiesce_after_kill(self, window: float = 1.0, timeout: float = 30) -> int:
        """Like quiesce, for a client that was killed mid-request; returns the requests left open.

        A request whose client died before its body arrived is counted by the
        emulator but never answered (it cannot publish: it has no body), so
        "nothing in flight" never comes.  Wait instead until the in-flight
        count has not moved for ``window`` seconds (50 times the 20 ms
        latency the crash test uses), with a deadline.
        """
        deadline = time.monotonic() + timeout
        last, since = self.in_flight(), time.monotonic()
        while time.monotonic() - since < window:
            if time.monotonic() > deadline:
                raise AssertionError(f"emulator requests kept changing for {timeout}s: {self.process.stats()}")
            time.sleep(0.02)  # polling a condition with a deadline
            now = self.in_flight()
            if now != last:
                last, since = now, time.monotonic()
        return last

    def barrier(self, verify: bool | str = True) -> None:
        """Every message the broker published before now has reached the devices.

        One subscriber connection receives every device topic and the broker
        forwards in publish order, so once a marker published now arrives,
        every earlier message has arrived too: "exactly one copy" and
        "nothing" are then facts, not races.  Faults must be off.
        """
        marker = f"barrier-{uuid.uuid4().hex}"
        # verify per request: requests lets REQUESTS_CA_BUNDLE override a session's verify.
        response = requests.post(
            self.process.publish_url, headers={"X-API-Key": self.api_key}, verify=verify,
            json={"ICCID": BARRIER_ICCID, "Topic": "", "Message": marker, "QoS": 1, "Format": 1}, timeout=30,
        )
        assert response.status_code == 200, response.text
        self._barriers += 1
        got = self.process.received(BARRIER_ICCID, wait_for=self._barriers, timeout=30)
        assert got and got[-1]["payload"] == marker, f"barrier marker not received: {got[-3:]!r}"

    def settle(self, abandoned: int = 0) -> None:
        """Faults off, nothing in flight, every publish delivered."""
        self.process.set_faults()
        self.quiesce(abandoned=abandoned)
        self.barrier()

    def received_exactly_one(self, device: str) -> dict[str, Any]:
        """The one message a device received, after a barrier proved no second copy is on its way."""
        self.process.received(device, wait_for=1, timeout=20)
        self.barrier()
        got = self.process.received(device)
        assert len(got) == 1, got
        return got[0]

    def receipts(self) -> dict[str, list[dict[str, Any]]]:
        """{ICCID: [messages]} received by the org's devices, barrier device left out."""
        prefix = f"{self.process.org}/"
        return {
            key[len(prefix):]: value
            for key, value in self.process.received_all().items()
            if key.startswith(prefix) and key != f"{self.process.org}/{BARRIER_ICCID}" and value
        }


def read_journal(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(records, unreadable lines) of a journal file."""
    records, bad = [], 0
    if not path.exists():
        return records, bad
    for raw in path.read_bytes().splitlines():
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
        except ValueError:
            bad += 1
            continue
        if isinstance(record, dict) and isinstance(record.get("digest"), str):
            records.append(record)
        else:
            bad += 1
    return records, bad
