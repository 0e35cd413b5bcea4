"""End to end with the real engine: ansible-rulebook runs the shipped rulebooks against the emulator.

A simulated device publishes an uplink over MQTT; the emulator pushes it to
the rulebook's monoz.link.webhook source (with the auth header); the rule
runs the playbook beside the rulebook, which calls the collection's module
through the emulator's API; the device receives it over MQTT. The test
asserts on what the device received (and on the SIM's reset), not on logs.

ansible-rulebook runs in its own session and is stopped by its process
group ID, even when the test fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from eda_support import API_KEY, LISTENING_RE, ORG, REPO_ROOT, RULEBOOKS, TOKEN, assert_no_secret

RULEBOOK_BIN = Path(sys.executable).parent / "ansible-rulebook"
START_TIMEOUT_S = 120
DESIRED = {"config_version": 7, "apn": "iot.1nce.net", "interval_s": 600}

pytestmark = pytest.mark.skipif(
    not RULEBOOK_BIN.exists() or shutil.which("java") is None and not os.environ.get("JAVA_HOME"),
    reason="ansible-rulebook (requirements/eda.txt) and Java 17+ are needed",
)


class Rulebook:
    """One ansible-rulebook process: started with -v so it logs where the source listens; stopped by process group."""

    def __init__(self, workdir: Path, rulebook: str, variables: dict[str, Any], env: dict[str, str]) -> None:
        self.workdir = workdir
        self.output = workdir / "rulebook.log"
        vars_file = workdir / "vars.yml"
        vars_file.write_text(yaml.safe_dump(variables))
        inventory = workdir / "inventory.yml"
        # the shipped inventory, with this venv's interpreter (no interpreter discovery)
        data = yaml.safe_load((RULEBOOKS / "inventory" / "localhost.yml").read_text())
        data["all"]["hosts"]["localhost"]["ansible_python_interpreter"] = sys.executable
        inventory.write_text(yaml.safe_dump(data))
        self.command = [str(RULEBOOK_BIN), "-r", str(RULEBOOKS / rulebook), "-i", str(inventory),
                        "--vars", str(vars_file), "--env-vars", "MONOZ_WEBHOOK_TOKEN", "-v"]
        self.env = env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Rulebook:
        with self.output.open("wb") as out:
            self.proc = subprocess.Popen(self.command, cwd=self.workdir, env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def wait_listening(self) -> int:
        """The port the webhook source bound (it was given port 0), read from the engine's log."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in self.text().splitlines():
                if "monoz.link.webhook: listening on" in line:
                    match = LISTENING_RE.search(line)
                    assert match
                    return int(match.group(2))
            assert self.proc is not None
            assert self.proc.poll() is None, f"ansible-rulebook exited with {self.proc.returncode}:\n{self.text()[-6000:]}"
            time.sleep(0.1)
        raise AssertionError(f"the webhook source did not start listening:\n{self.text()[-6000:]}")

    def text(self) -> str:
        return self.output.read_text(errors="replace") if self.output.exists() else ""

    def __exit__(self, *exc: object) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(wait)
                return
            except subprocess.TimeoutExpired:
                continue


@pytest.fixture(scope="module")
def collections_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A collections path whose ansible_collections/monoz/link is this checkout."""
    root = tmp_path_factory.mktemp("collections")
    (root / "ansible_collections" / "monoz").mkdir(parents=True)
    (root / "ansible_collections" / "monoz" / "link").symlink_to(REPO_ROOT, target_is_directory=True)
    return root


def engine_env(collections: Path, workdir: Path, emulator: Any) -> dict[str, str]:
    """This environment without the developer's Ansible or Monoz settings, plus the run's own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MONOZ_"))}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_HOME=str(workdir / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_RETRY_FILES_ENABLED="false",
        MONOZ_ORG_ID=ORG,
        MONOZ_API_KEY=API_KEY,
        MONOZ_API_URL=emulator.api_url,
        MONOZ_WEBHOOK_TOKEN=TOKEN,
    )
    return env


def webhook_vars() -> dict[str, Any]:
    return {"monoz_webhook_host": "127.0.0.1", "monoz_webhook_port": 0,
            "monoz_playbook_dir": str(RULEBOOKS / "playbooks")}


def test_config_drift_rulebook_sends_the_desired_configuration_to_the_drifted_device(
        emulator, collections_root, tmp_path):
    drifted, current = "8988280666000000011", "8988280666000000012"
    variables = {**webhook_vars(), "monoz_desired_config": DESIRED}
    with Rulebook(tmp_path, "config_drift.yml", variables, engine_env(collections_root, tmp_path, emulator)) as engine:
        port = engine.wait_listening()
        emulator.set_webhook(f"http://127.0.0.1:{port}/", headers={"Authorization": f"Bearer {TOKEN}"})
        # a device on the desired version first, then a drifted one: the engine sees them in this order
        emulator.uplink(current, json.dumps({"config_version": 7}), topic="status")
        emulator.uplink(drifted, json.dumps({"config_version": 5, "uptime": 1200}), topic="status")
        received = emulator.received(drifted, wait_for=1, timeout=90)
        emulator.sync()
        assert emulator.received(current) == []  # no rule fired for the up-to-date device
        output = engine.text()
    assert len(received) == 1, received
    assert received[0]["topic"] == f"/{ORG}/{drifted}/sub/config"
    assert json.loads(received[0]["payload"]) == DESIRED
    assert received[0]["qos"] == 1
    assert emulator.webhook()["delivered_packets"] == 2
    assert_no_secret(output)


@pytest.mark.skipif(not (REPO_ROOT / "plugins" / "modules" / "monoz_sim_reset.py").exists(),
                    reason="monoz.link.monoz_sim_reset is not in this checkout")
def test_device_alarm_rulebook_resets_the_sim_of_the_alarming_device(emulator, collections_root, tmp_path):
    alarming, healthy = "8988280666000000013", "8988280666000000014"
    before = {iccid: emulator.device_state(iccid)["connects"] for iccid in (alarming, healthy)}
    with Rulebook(tmp_path, "device_alarm.yml", webhook_vars(), engine_env(collections_root, tmp_path, emulator)) as engine:
        port = engine.wait_listening()
        emulator.set_webhook(f"http://127.0.0.1:{port}/", headers={"Authorization": f"Bearer {TOKEN}"})
        emulator.uplink(healthy, json.dumps({"status": "ok"}), topic="status")
        emulator.uplink(alarming, json.dumps({"status": "error", "code": 17}), topic="status")
        deadline = time.monotonic() + 90
        while emulator.device_state(alarming)["connects"] == before[alarming]:
            assert time.monotonic() < deadline, f"the SIM was not reset:\n{engine.text()[-4000:]}"
            time.sleep(0.2)
        # the debug action runs after the playbook; wait for its line before stopping the engine
        while f"SIM {alarming} reset after it reported error" not in engine.text():
            assert time.monotonic() < deadline, f"no notification:\n{engine.text()[-4000:]}"
            time.sleep(0.2)
        output = engine.text()
    assert emulator.device_state(alarming)["connects"] == before[alarming] + 1
    assert emulator.device_state(healthy)["connects"] == before[healthy]
    assert_no_secret(output)


def test_a_rulebook_without_webhook_credentials_refuses_to_start(emulator, collections_root, tmp_path):
    env = engine_env(collections_root, tmp_path, emulator)
    del env["MONOZ_WEBHOOK_TOKEN"]
    rulebook = Rulebook(tmp_path, "config_drift.yml", {**webhook_vars(), "monoz_desired_config": DESIRED}, env)
    rulebook.command.remove("--env-vars")
    rulebook.command.remove("MONOZ_WEBHOOK_TOKEN")
    with rulebook as engine:
        assert engine.proc is not None
        returncode = engine.proc.wait(START_TIMEOUT_S)
        output = engine.text()
    assert returncode != 0
    assert "monoz.link.webhook: no authentication: set token, username/password or header_name/header_value" in output
    assert "listening on" not in output
