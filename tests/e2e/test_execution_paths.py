# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The controller path and the module path are one behaviour, and the plugin picks the module where it must.

Which path ran shows at -vvv: ansible-core logs the transfer of the module's
AnsiballZ payload, and the controller path has no module process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from e2e_support import ANSIBLE_CORE, iccid

UNKNOWN = "8988280666999999999"
ECHO_KEYS = ("invocation",)
MODULE_PAYLOAD = "AnsiballZ_monoz_downlink.py"


def _comparable(result):
    """A registered result without ansible-core's own echo of the arguments."""
    if isinstance(result, dict):
        return {key: _comparable(value) for key, value in result.items() if key not in ECHO_KEYS}
    if isinstance(result, list):
        return [_comparable(value) for value in result]
    return result


def _run(ansible, emu, **extra):
    return ansible.run("execution_paths.yml", {"e2e_profile": emu.profile(), **extra}, verbosity=3)


def test_both_paths_return_the_same_keys_and_values(emu, ansible):
    extra = {"e2e_iccid": iccid(60), "e2e_devices": [iccid(61), UNKNOWN, iccid(62)]}
    ansible.execution = "controller"
    on_controller = _run(ansible, emu, **extra)
    ansible.execution = "module"
    in_module = _run(ansible, emu, **extra)
    assert MODULE_PAYLOAD not in on_controller.output, "the controller path did not run"
    assert MODULE_PAYLOAD in in_module.output, "the module path did not run"
    for name in ("single", "fleet", "invalid", "check"):
        assert _comparable(on_controller.result[name]) == _comparable(in_module.result[name]), name
    # AnsibleModule's own wording, which changed in ansible-core 2.19
    wrong_type = "str" if ANSIBLE_CORE >= (2, 19) else "<class 'str'>"
    assert on_controller.result["invalid"]["msg"].startswith(f"argument 'qos' is of type {wrong_type}")
    assert on_controller.result["fleet"]["summary"] == {"total": 3, "sent": 2, "failed": 1, "skipped": 0,
                                                        "would_send": 0}
    # each path delivered its own copy: two runs, two messages per device
    assert len(emu.received_exactly(iccid(61), 2)) == 2


@pytest.fixture
def python_without_requests(tmp_path: Path) -> Path:
    """A virtualenv of the base interpreter with nothing installed: no requests."""
    venv = tmp_path / "bare-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    probe = subprocess.run([str(python), "-c", "import requests"], capture_output=True, check=False)
    assert probe.returncode != 0, "the bare venv can import requests"
    return python


def test_interpreter_without_requests_fails_with_missing_required_lib(emu, ansible, python_without_requests):
    device = iccid(63)
    run = _run(ansible, emu, e2e_iccid=device, e2e_interpreter=str(python_without_requests))
    single = run.result["single"]
    assert single["failed"] is True, run.describe()
    assert "Failed to import the required Python library (requests)" in single["msg"]
    assert emu.received_exactly(device, 0) == []


def test_play_environment_feeds_the_fallbacks_on_the_controller_path(emu, ansible):
    device = iccid(64)
    profile = emu.profile()
    environment = {"MONOZ_ORG_ID": profile["org_id"], "MONOZ_API_KEY": profile["api_key"],
                   "MONOZ_API_URL": profile["api_url"]}
    run = ansible.run("execution_paths.yml", {"e2e_iccid": device, "e2e_environment": environment},
                      verbosity=3)
    single = run.result["single"]
    assert single.get("failed") is not True, run.describe()
    assert MODULE_PAYLOAD not in run.output, "a play environment sent the task to the module path"
    assert [m["payload"] for m in emu.received_exactly(device, 1)] == ['{"apn":"iot.paths.example"}']


def test_become_runs_the_module_and_still_delivers(emu, ansible):
    device = iccid(65)
    run = _run(ansible, emu, e2e_iccid=device, e2e_become=True)
    single = run.result["single"]
    assert single.get("failed") is not True, run.describe()
    assert MODULE_PAYLOAD in run.output
    assert len(emu.received_exactly(device, 1)) == 1


def test_async_runs_the_module_and_still_delivers(emu, ansible):
    device = iccid(66)
    run = _run(ansible, emu, e2e_iccid=device, e2e_async=60)
    single = run.result["single"]
    assert single.get("failed") is not True, run.describe()
    assert "ansible_job_id" in single
    assert len(emu.received_exactly(device, 1)) == 1
