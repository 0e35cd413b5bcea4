"""Fixtures of the Event-Driven Ansible tests (tests/eda). Helpers live in eda_support.py."""

from __future__ import annotations

import base64
from types import ModuleType
from typing import Any, Callable

import pytest

from eda_support import API_KEY, HEADER_NAME, HEADER_VALUE, ORG, PASSWORD, TOKEN, USERNAME, SourceRunner, load_source

AUTH_ARGS = {
    "bearer": {"token": TOKEN},
    "basic": {"username": USERNAME, "password": PASSWORD},
    "header": {"header_name": HEADER_NAME, "header_value": HEADER_VALUE},
}
AUTH_HEADERS = {
    "bearer": {"Authorization": f"Bearer {TOKEN}"},
    "basic": {"Authorization": "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()},
    "header": {HEADER_NAME: HEADER_VALUE},
}


@pytest.fixture(scope="session")
def webhook() -> ModuleType:
    return load_source("webhook")


@pytest.fixture(scope="session")
def raw_data() -> ModuleType:
    return load_source("raw_data")


@pytest.fixture
def start_webhook(webhook: ModuleType) -> Callable[..., SourceRunner]:
    """start_webhook(auth="bearer", **args): the source listening on 127.0.0.1 (a free port), stopped after the test."""
    runners: list[SourceRunner] = []

    def start(auth: str | None = "bearer", maxsize: int = 1, auto_consume: bool = True, **args: Any) -> SourceRunner:
        full = {"host": "127.0.0.1", "port": 0, **(AUTH_ARGS[auth] if auth else {}), **args}
        runner = SourceRunner(webhook, full, maxsize=maxsize, auto_consume=auto_consume)
        runners.append(runner)
        return runner.__enter__()

    yield start
    for runner in runners:
        runner.stop()


EMULATOR_DEVICES = 120  # the benchmark-sized fleet is not needed here; 120 covers batches and the e2e


@pytest.fixture(scope="session")
def emulator_session():
    from monoz_emulator.testing import EmulatorProcess

    with EmulatorProcess(devices=EMULATOR_DEVICES, org=ORG, api_key=API_KEY) as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_session):
    """The session emulator, reset, with no webhook configured."""
    emulator_session.set_webhook(None)
    emulator_session.reset()
    emulator_session.unblock_webhook()
    yield emulator_session
    emulator_session.set_webhook(None)
