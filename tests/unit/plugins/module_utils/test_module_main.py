# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""run_module: the main() every API module shares."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from ansible_collections.monoz.link.plugins.module_utils import _module_main
from ansible_collections.monoz.link.plugins.modules import (
    monoz_data_info,
    monoz_device_info,
    monoz_downlink,
    monoz_sim,
    monoz_sim_reset,
)
from ansible_collections.monoz.link.tests.unit.plugins.modules.module_harness import base_args, run_module

KWARGS = {"argument_spec": {"org_id": {"type": "str"}, "api_key": {"type": "str", "no_log": True}},
          "supports_check_mode": True}


def runner_returning(result, warnings=()):
    calls = []

    def runner(params, check_mode):
        calls.append((params, check_mode))
        return SimpleNamespace(result=result, warnings=list(warnings))

    return runner, calls


def module_running(runner):
    return SimpleNamespace(main=lambda: _module_main.run_module(dict(KWARGS), runner))


def test_success_exits_with_the_runner_result_and_its_warnings():
    runner, calls = runner_returning({"changed": True, "n": 1}, ["careful"])
    kind, result = run_module(module_running(runner), base_args(api_url=None))
    assert kind == "exit" and result["n"] == 1 and result["changed"] is True
    assert calls[0][1] is False and calls[0][0]["org_id"]


def test_a_failed_result_fails_the_module_with_every_key():
    runner, _calls = runner_returning({"failed": True, "msg": "HTTP 404 Not Found for ICCID 1: gone", "results": []})
    kind, result = run_module(module_running(runner), base_args(api_url=None))
    assert kind == "fail" and result["msg"].startswith("HTTP 404") and result["results"] == []


def test_check_mode_reaches_the_runner():
    runner, calls = runner_returning({"changed": False})
    run_module(module_running(runner), base_args(api_url=None, _ansible_check_mode=True))
    assert calls[0][1] is True


def test_without_requests_the_module_fails_with_missing_required_lib(monkeypatch):
    monkeypatch.setattr(_module_main, "HAS_REQUESTS", False)
    monkeypatch.setattr(_module_main, "REQUESTS_IMPORT_ERROR", "Traceback: no module named requests")
    runner, calls = runner_returning({"changed": True})
    kind, result = run_module(module_running(runner), base_args(api_url=None))
    assert kind == "fail" and "Failed to import the required Python library (requests)" in result["msg"]
    assert calls == []


@pytest.mark.parametrize("module", [monoz_data_info, monoz_device_info, monoz_downlink, monoz_sim, monoz_sim_reset])
def test_every_api_module_main_is_run_module(module, monkeypatch):
    seen = []
    monkeypatch.setattr(module, "run_module", lambda kwargs, runner: seen.append((kwargs, runner)))
    module.main()
    [(kwargs, runner)] = seen
    assert kwargs["supports_check_mode"] is True and runner.__name__.startswith("run_")
