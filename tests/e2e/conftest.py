"""Fixtures of the end-to-end tests: real ansible-playbook runs against the emulator.

Every test runs `ansible-playbook` (the one beside ``sys.executable``, so the
same venv as pytest) against a Monoz Link emulator on 127.0.0.1 and asserts on
what the simulated MQTT device received, not only on the HTTP answer.

- One emulator for the session (``emulator_session``), reset before each test
  (``emu``); ``EmulatorProcess`` stops it by PID even when a test fails.
- Its MQTT broker (``mqtt_broker``): Eclipse Mosquitto, started for the
  session by ``MosquittoProcess`` and stopped by PID, unless
  MONOZ_TEST_BROKER=embedded asks for the emulator's embedded broker.
- ``execution`` parametrises a test over both paths of the collection: the
  action plugin running the logic in the controller's worker (``controller``)
  and the real module process (``module``, forced with
  MONOZ_DOWNLINK_EXECUTION=module).
- ``ansible`` runs tests/e2e/playbooks/*.yml with extra vars in a JSON file
  and returns the exit code, stdout, stderr and the registered result that the
  playbook wrote to a JSON file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent  # the repository root is the collection root
PLAYBOOKS = E2E_DIR / "playbooks"
EMULATOR_DIR = REPO_ROOT / "emulator"
if str(EMULATOR_DIR) not in sys.path:
    sys.path.insert(0, str(EMULATOR_DIR))

from monoz_emulator.testing import EmulatorError, EmulatorProcess, MosquittoProcess, broker_from_env  # noqa: E402

from e2e_support import API_KEY, ORG, isolated_ansible_env, local_controller_files  # noqa: E402

DEVICE_COUNT = 250
# The vendor's example ICCID, registered by the emulator and used by no test:
# the target of the ordering barrier (see ``Emu.barrier``).
BARRIER_ICCID = "12345678"
PLAYBOOK_TIMEOUT_S = 180
EXECUTION_PATHS = ("controller", "module")


@pytest.fixture(scope="session")
def collections_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path holding ansible_collections/monoz/link -> the repository root."""
    root = tmp_path_factory.mktemp("collections")
    namespace = root / "ansible_collections" / "monoz"
    namespace.mkdir(parents=True)
    (namespace / "link").symlink_to(REPO_ROOT, target_is_directory=True)
    return root


@pytest.fixture(scope="session")
def mqtt_broker():
    """HOST:PORT of the session's mosquitto, or None for the embedded broker (MONOZ_TEST_BROKER=embedded)."""
    try:
        choice, problem = broker_from_env(), None
    except EmulatorError as exc:
        choice, problem = None, str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)  # mosquitto missing: say what to install, no traceback
    if choice == "embedded":
        yield None
        return
    with MosquittoProcess() as broker:
        yield broker.address


@pytest.fixture(scope="session")
def emulator_session(mqtt_broker):
    with EmulatorProcess(devices=DEVICE_COUNT, org=ORG, api_key=API_KEY, mqtt_broker=mqtt_broker) as emulator:
        yield emulator


class Emu:
    """The session emulator plus test helpers; reset before each test."""

    def __init__(self, process: EmulatorProcess) -> None:
        self.process = process
        self._barriers = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.process, name)

    def profile(self, **overrides: Any) -> dict[str, Any]:
        return {"org_id": ORG, "api_key": API_KEY, "api_url": self.process.api_url, **overrides}

    def barrier(self) -> None:
        """Wait until everything the broker published before now has reached the devices.

        One subscriber connection receives every device topic, and the broker
        forwards in publish order, so once a marker published now arrives,
        every earlier message has arrived too: "received nothing" and
        "exactly one copy" are then facts, not races.  Call it after the
        assertions on stats() and messages(): the marker is one more request.
        """
        marker = f"barrier-{uuid.uuid4().hex}"
        response = requests.post(
            self.process.publish_url,
            headers={"X-API-Key": API_KEY},
            json={"ICCID": BARRIER_ICCID, "Topic": "", "Message": marker, "QoS": 1, "Format": 1},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        self._barriers += 1
        got = self.process.received(BARRIER_ICCID, wait_for=self._barriers, timeout=20)
        assert got and got[-1]["payload"] == marker, f"barrier marker not received: {got!r}"

    def received_exactly(self, device: str, count: int, timeout: float = 20) -> list[dict[str, Any]]:
        """Everything the device received, once `count` messages are in and a barrier passed.

        The caller asserts the length: fewer means a message never arrived,
        more means a duplicate.  Call it after asserting on stats()/messages().
        """
        if count:
            self.process.received(device, wait_for=count, timeout=timeout)
        self.barrier()
        return self.process.received(device)

    def all_received(self) -> dict[str, list[dict[str, Any]]]:
        """{ICCID: [messages]} for the org, barrier device left out."""
        prefix = f"{ORG}/"
        return {
            key[len(prefix):]: value
            for key, value in self.process.received_all().items()
            if key.startswith(prefix) and key != f"{ORG}/{BARRIER_ICCID}"
        }


@pytest.fixture
def emu(emulator_session: EmulatorProcess) -> Emu:
    emulator_session.reset()
    return Emu(emulator_session)


@pytest.fixture(params=EXECUTION_PATHS)
def execution(request: pytest.FixtureRequest) -> str:
    """Run the test on the controller path and on the real module path."""
    return request.param


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    result: dict[str, Any]
    elapsed: float
    command: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    @property
    def calls(self) -> list[dict[str, Any]]:
        """One registered result per element of e2e_calls (downlink.yml)."""
        return self.result.get("results", [])

    def call(self, index: int = 0) -> dict[str, Any]:
        calls = self.calls
        assert len(calls) > index, f"no result for call {index}:\n{self.describe()}"
        return calls[index]

    def describe(self) -> str:
        return (
            f"rc={self.rc} command={' '.join(self.command)}\n--- stdout ---\n{self.stdout[-6000:]}"
            f"\n--- stderr ---\n{self.stderr[-4000:]}"
        )


class Ansible:
    """Runs playbooks of tests/e2e/playbooks with the collection on the collections path."""

    def __init__(self, collections_root: Path, workdir: Path, execution: str | None) -> None:
        self.collections_root = collections_root
        self.workdir = workdir
        self.execution = execution
        self.bin = Path(sys.executable).parent / "ansible-playbook"
        self.inventory, self.config = local_controller_files(workdir)
        self.runs = 0

    def base_env(self) -> dict[str, str]:
        return isolated_ansible_env(self.collections_root, self.workdir, self.config, self.execution)

    def run(
        self,
        playbook: str,
        extra_vars: dict[str, Any],
        env: dict[str, str] | None = None,
        check: bool = False,
        verbosity: int = 0,
    ) -> PlaybookRun:
        self.runs += 1
        vars_file = self.workdir / f"vars-{self.runs}.json"
        result_file = self.workdir / f"result-{self.runs}.json"
        vars_file.write_text(json.dumps({**extra_vars, "e2e_result_path": str(result_file)}))
        command = [str(self.bin), "-i", str(self.inventory), str(PLAYBOOKS / playbook), "-e", f"@{vars_file}"]
        if check:
            command.append("--check")
        if verbosity:
            command.append("-" + "v" * verbosity)
        started = time.monotonic()
        proc = subprocess.run(
            command, cwd=self.workdir, env={**self.base_env(), **(env or {})},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PLAYBOOK_TIMEOUT_S, check=False,
        )
        elapsed = time.monotonic() - started
        result = json.loads(result_file.read_text()) if result_file.exists() else {}
        run = PlaybookRun(proc.returncode, proc.stdout, proc.stderr, result, elapsed, command)
        assert result_file.exists(), f"the playbook wrote no result file:\n{run.describe()}"
        return run

    def downlink(
        self,
        calls: list[dict[str, Any]],
        profiles: dict[str, dict[str, Any]],
        **kwargs: Any,
    ) -> PlaybookRun:
        """Run downlink.yml: one module call per element of ``calls``."""
        return self.run("downlink.yml", {"e2e_calls": calls, "e2e_profiles": profiles}, **kwargs)


@pytest.fixture
def ansible(collections_root: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Ansible:
    execution = request.getfixturevalue("execution") if "execution" in request.fixturenames else None
    return Ansible(collections_root, tmp_path, execution)
