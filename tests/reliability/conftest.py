"""Fixtures of the reliability and security tests (issue 6).

Real ansible-playbook runs (the one beside ``sys.executable``) against the
Monoz Link emulator on 127.0.0.1, with assertions on what the simulated MQTT
devices received.  Every playbook runs at ``-vvv`` with ``ANSIBLE_LOG_PATH``
set, and every run is checked for the API key (see ``rel_support.Ansible``).

- ``emu``: one emulator for the session (2,000 devices + the barrier device),
  reset and with faults off before each test; ``EmulatorProcess`` stops it by
  PID even when a test fails. Its MQTT broker is Eclipse Mosquitto, started
  for the session by ``MosquittoProcess`` and stopped by PID, unless
  MONOZ_TEST_BROKER=embedded asks for the emulator's embedded broker.
- ``ansible``: the playbook runner, working in the test's tmp_path.
- ``execution``: parametrises a test over the action plugin path
  (``controller``) and the real module process (``module``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REL_DIR = Path(__file__).resolve().parent
if str(REL_DIR) not in sys.path:
    sys.path.insert(0, str(REL_DIR))

from rel_support import (  # noqa: E402
    API_KEY, ORG, Ansible, Emu, EmulatorError, EmulatorProcess, MosquittoProcess, broker_choice, collections_root,
)

SESSION_DEVICES = 2000


@pytest.fixture(scope="session")
def collections(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path holding ansible_collections/monoz/link -> the repository root."""
    root = collections_root(tmp_path_factory.mktemp("collections"))
    # The hypothesis tests import module_utils in this process.
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


@pytest.fixture(scope="session")
def mqtt_broker():
    """HOST:PORT of the session's mosquitto, or "embedded" (MONOZ_TEST_BROKER=embedded)."""
    try:
        choice, problem = broker_choice(), None
    except EmulatorError as exc:
        choice, problem = None, str(exc)
    if problem:
        pytest.fail(problem, pytrace=False)  # mosquitto missing: say what to install, no traceback
    if choice == "embedded":
        yield "embedded"
        return
    with MosquittoProcess() as broker:
        yield broker.address


@pytest.fixture(scope="session")
def emulator_session(mqtt_broker):
    with EmulatorProcess(devices=SESSION_DEVICES, org=ORG, api_key=API_KEY, mqtt_broker=mqtt_broker) as emulator:
        yield emulator


@pytest.fixture
def emu(emulator_session: EmulatorProcess) -> Emu:
    emulator_session.set_faults()
    emulator_session.reset()
    return Emu(emulator_session)


@pytest.fixture(params=("controller", "module"))
def execution(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def ansible(collections: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Ansible:
    execution = request.getfixturevalue("execution") if "execution" in request.fixturenames else None
    return Ansible(collections, tmp_path / "work", execution)
