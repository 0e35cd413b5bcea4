# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where a Monoz Link action runs: each fallback condition, with real Task and PlayContext objects."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace
from unittest import mock

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.monoz.link.plugins.module_utils._downlink_args import downlink_module_kwargs
from ansible_collections.monoz.link.plugins.plugin_utils import _controller_action
from ansible_collections.monoz.link.plugins.plugin_utils._controller_action import (
    ControllerPathAction,
    python_environment,
    validation_failure_message,
)
from ansible_collections.monoz.link.tests.unit.plugins.modules.module_harness import patch_module_args

MODULE = "monoz.link.monoz_downlink"


class RecordingAction(ControllerPathAction):
    """The real controller path with a runner that records what it saw."""

    MODULE_NAME = MODULE
    module_kwargs = staticmethod(downlink_module_kwargs)
    seen: list = []

    @staticmethod
    def runner(params, check_mode, client_factory=None):
        RecordingAction.seen.append({
            "params": params, "check_mode": check_mode, "client_factory": client_factory,
            "org_env": os.environ.get("MONOZ_ORG_ID"), "proxy_env": os.environ.get("HTTPS_PROXY"),
        })
        return SimpleNamespace(result={"changed": True, "org_id": params["org_id"]}, warnings=[])


def make_action(transport="local", become=False, async_val=0, environment=None, delegate_to=None, args=None):
    play_context = PlayContext()
    play_context.become = become
    connection = connection_loader.get(transport, play_context, None)
    task = Task()
    task.args = args if args is not None else {"org_id": "ORG", "api_key": "k3y-secret", "iccid": "1", "payload": "x"}
    task.async_val = async_val
    if environment is not None:
        task.environment = environment
    if delegate_to is not None:
        task.delegate_to = delegate_to
    loader = DataLoader()
    action = RecordingAction(task, connection, play_context, loader, Templar(loader=loader), None)
    module_runs = []

    def execute_module(**kwargs):
        module_runs.append(kwargs)
        return {"changed": False, "ran": "module"}

    action._execute_module = execute_module
    RecordingAction.seen = []
    return action, module_runs


@pytest.fixture(autouse=True)
def default_path(monkeypatch):
    monkeypatch.delenv(_controller_action.EXECUTION_ENV, raising=False)
    monkeypatch.delenv(_controller_action.LEGACY_EXECUTION_ENV, raising=False)


def test_local_task_without_interpreter_runs_in_process():
    action, module_runs = make_action()
    result = action.run(task_vars={})
    assert module_runs == [] and result["org_id"] == "ORG" and result["changed"] is True


@pytest.mark.parametrize("setting", ["auto", "auto_silent", "auto_legacy"])
def test_interpreter_discovery_not_yet_run_counts_as_unset(setting):
    action, module_runs = make_action()
    action.run(task_vars={"ansible_python_interpreter": setting})
    assert module_runs == [] and len(RecordingAction.seen) == 1


def test_interpreter_that_is_the_controllers_python_runs_in_process():
    action, module_runs = make_action()
    action.run(task_vars={"ansible_python_interpreter": sys.executable})
    assert module_runs == []


def test_interpreter_of_another_virtualenv_runs_the_module(tmp_path):
    # A venv whose python links to this very interpreter still has other packages.
    venv = tmp_path / "other-venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (venv / "bin" / "python").symlink_to(sys.executable)
    action, module_runs = make_action()
    action.run(task_vars={"ansible_python_interpreter": str(venv / "bin" / "python")})
    assert [run["module_name"] for run in module_runs] == [MODULE]
    assert RecordingAction.seen == []


def test_interpreter_that_does_not_exist_runs_the_module():
    action, module_runs = make_action()
    action.run(task_vars={"ansible_python_interpreter": "/nonexistent/bin/python3"})
    assert len(module_runs) == 1


def test_interpreter_of_the_delegated_host_is_the_one_that_counts(tmp_path):
    action, module_runs = make_action(delegate_to="localhost")
    action.run(task_vars={
        "ansible_python_interpreter": sys.executable,
        "ansible_delegated_vars": {"localhost": {"ansible_python_interpreter": "/nonexistent/python"}},
    })
    assert len(module_runs) == 1


def test_discovered_interpreter_is_compared_when_discovery_ran():
    action, module_runs = make_action()
    action.run(task_vars={"ansible_facts": {"discovered_interpreter_python": "/nonexistent/python3"}})
    assert len(module_runs) == 1


def test_become_runs_the_module():
    action, module_runs = make_action(become=True)
    action.run(task_vars={})
    assert len(module_runs) == 1 and RecordingAction.seen == []


def test_async_runs_the_module_in_the_background():
    action, module_runs = make_action(async_val=30)
    action.run(task_vars={})
    assert module_runs[0]["wrap_async"] == 30


def test_remote_host_runs_the_module():
    action, module_runs = make_action(transport="ssh")
    action.run(task_vars={})
    assert len(module_runs) == 1 and RecordingAction.seen == []


def test_forced_module_path_runs_the_module(monkeypatch):
    monkeypatch.setenv(_controller_action.EXECUTION_ENV, "module")
    action, module_runs = make_action()
    action.run(task_vars={})
    assert len(module_runs) == 1


def test_legacy_variable_still_forces_the_module_path(monkeypatch):
    monkeypatch.setenv(_controller_action.LEGACY_EXECUTION_ENV, "module")
    action, module_runs = make_action()
    action.run(task_vars={})
    assert len(module_runs) == 1


def test_task_environment_is_applied_in_process_and_put_back(monkeypatch):
    monkeypatch.setenv("MONOZ_ORG_ID", "OUTER")
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    environment = [{"HTTPS_PROXY": "http://127.0.0.1:3128"}, {"MONOZ_ORG_ID": "FROM_ENV"}]
    args = {"api_key": "k3y-secret", "iccid": "1", "payload": "x"}
    action, module_runs = make_action(environment=environment, args=args)
    result = action.run(task_vars={})
    assert module_runs == []
    # the env_fallback of org_id read the task's environment, and so did the runner
    assert result["org_id"] == "FROM_ENV"
    assert RecordingAction.seen[0]["proxy_env"] == "http://127.0.0.1:3128"
    assert os.environ["MONOZ_ORG_ID"] == "OUTER" and "HTTPS_PROXY" not in os.environ


def test_python_environment_tells_a_venv_from_its_base_interpreter(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("")
    (venv / "bin" / "python3").symlink_to(sys.executable)
    assert python_environment(str(venv / "bin" / "python3")) == ("venv", str(venv.resolve()))
    assert python_environment(str(venv / "bin" / "python3")) != python_environment(os.path.realpath(sys.executable))


# The same failure worded the same way on both paths.
FAILING_ARGS = [
    {"org_id": "O", "api_key": "k", "iccid": "1", "payload": "x", "bogus": 1},
    {"org_id": "O", "api_key": "k", "iccid": "1", "payload": "x", "qos": "high", "bogus": 1},
    {"org_id": "O", "api_key": "k", "iccid": "1", "payload": "x", "qos": 5},
    {"org_id": "O", "api_key": "k", "payload": "x"},
    {"org_id": "O", "api_key": "k", "iccid": "1", "devices": ["2"], "payload": "x"},
]


@pytest.mark.parametrize("args", FAILING_ARGS)
def test_validation_failure_is_worded_as_ansible_module_words_it(args):
    failures = []

    def fail_json(self, **result):
        failures.append(result["msg"])
        raise SystemExit(1)

    with patch_module_args(dict(args, _ansible_module_name=MODULE)), \
            mock.patch.object(AnsibleModule, "fail_json", fail_json), pytest.raises(SystemExit):
        AnsibleModule(**downlink_module_kwargs())
    kwargs = downlink_module_kwargs()
    kwargs.pop("supports_check_mode")
    validation = ArgumentSpecValidator(**kwargs).validate(dict(args))
    assert validation_failure_message(validation, MODULE) == failures[0]


def test_in_process_runs_lend_their_clients_the_workers_kept_session(monkeypatch):
    sessions = []

    def runner(params, check_mode, client_factory=None):
        client = client_factory(api_url=params["api_url"], org_id=params["org_id"], api_key=params["api_key"],
                                timeout=params["timeout"], validate_certs=params["validate_certs"],
                                retries=params["retries"], pool_size=1)
        sessions.append(client._session)
        client.close()
        return SimpleNamespace(result={"changed": False}, warnings=[])

    monkeypatch.setattr(RecordingAction, "runner", staticmethod(runner))
    monkeypatch.setattr(_controller_action, "KEPT_SESSIONS", _controller_action.SessionKeeper())
    for _run in range(2):
        action, module_runs = make_action()
        action.run(task_vars={})
    assert module_runs == [] and len(sessions) == 2
    assert sessions[0] is sessions[1]
