# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""monoz_sim_reset: one PUT per SIM, never retried after a 500, rate-limited, nothing sent in check mode."""

from __future__ import annotations

import json
from unittest import mock

import pytest
import requests

from ansible_collections.monoz.link.plugins.module_utils import _api_client
from ansible_collections.monoz.link.plugins.module_utils._rate_limiter import StartPacer
from ansible_collections.monoz.link.plugins.modules import monoz_sim_reset
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY
from ansible_collections.monoz.link.tests.unit.plugins.modules.module_harness import (
    ScriptedAPI,
    base_args,
    error_answer,
    run_module,
    run_module_output,
    update_answer,
)

I1, I2, I3 = "8988280666000000001", "8988280666000000002", "8988280666000000003"
UPDATED = {"StatusCode": 200, "Message": "UpdateSuccess"}


def body(iccid: str) -> dict:
    return {"ICCID": iccid}


def run(args):
    return run_module(monoz_sim_reset, args)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(_api_client, "backoff_delay", lambda retry_number, rng=None: 0.0)


def test_single_reset_is_one_put_and_always_changed():
    with ScriptedAPI() as api:
        api.expect("PUT", "Sim/Reset", body(I1), update_answer())
        kind, result = run(base_args(iccid=I1))
    assert kind == "exit"
    assert api.calls() == [("PUT", "Sim/Reset", body(I1))]
    assert result == {"changed": True, "status_code": 200, "response": UPDATED}


def test_a_500_is_never_retried():
    with ScriptedAPI() as api:
        api.expect("PUT", "Sim/Reset", body(I1), error_answer(500, "reset failed"))
        kind, result = run(base_args(iccid=I1, retries=10))
    assert kind == "fail"
    assert len(api.requests) == 1
    assert result["msg"] == f"HTTP 500 Internal Server Error for ICCID {I1}: reset failed"
    assert result["status_code"] == 500
    assert result["response"]["Message"] == "reset failed"
    assert result["changed"] is False


def test_a_read_timeout_is_never_retried():
    with ScriptedAPI() as api:
        api.expect("PUT", "Sim/Reset", body(I1), requests.exceptions.ReadTimeout("read timed out"))
        kind, result = run(base_args(iccid=I1, retries=10))
    assert kind == "fail"
    assert len(api.requests) == 1
    assert "the reset may have started" in result["msg"]


def test_503_before_the_reset_took_effect_is_retried():
    with ScriptedAPI() as api:
        api.expect("PUT", "Sim/Reset", body(I1), error_answer(503, "busy"), update_answer())
        kind, result = run(base_args(iccid=I1))
    assert (kind, result["changed"], result["status_code"]) == ("exit", True, 200)


def test_check_mode_sends_nothing_and_reports_changed():
    with ScriptedAPI() as api:
        kind, result = run(base_args(iccid=I1, _ansible_check_mode=True))
    assert kind == "exit"
    assert api.requests == []
    assert result == {"changed": True}


def test_fleet_check_mode_reports_would_send_for_each_sim():
    with ScriptedAPI() as api:
        kind, result = run(base_args(devices=[I1, I2], _ansible_check_mode=True))
    assert api.requests == []
    assert result["results"] == [{"iccid": I1, "status": "would_send", "status_code": None},
                                 {"iccid": I2, "status": "would_send", "status_code": None}]
    assert result["summary"] == {"total": 2, "sent": 0, "would_send": 2, "failed": 0}
    assert result["changed"] is True


def test_fleet_resets_each_sim_once_in_input_order_with_failures_shown():
    with ScriptedAPI() as api:
        api.expect("PUT", "Sim/Reset", body(I1), update_answer())
        api.expect("PUT", "Sim/Reset", body(I2), error_answer(404, "ICCID not found"))
        api.expect("PUT", "Sim/Reset", body(I3), update_answer())
        kind, result = run(base_args(devices=[I1, {"iccid": I2, "name": "x"}, I3], concurrency=3))
    assert kind == "fail"
    assert result["results"] == [
        {"iccid": I1, "status": "sent", "status_code": 200},
        {"iccid": I2, "status": "failed", "status_code": 404, "msg": f"HTTP 404 Not Found for ICCID {I2}: ICCID not found"},
        {"iccid": I3, "status": "sent", "status_code": 200},
    ]
    assert result["summary"] == {"total": 3, "sent": 2, "would_send": 0, "failed": 1}
    assert result["changed"] is True
    assert result["msg"].startswith("1 of 3 resets failed (2 sent); first failure: HTTP 404")


def test_fleet_401_stops_at_once():
    with ScriptedAPI() as api:
        api.expect("PUT", "Sim/Reset", body(I1), error_answer(401, "Unauthorized"))
        kind, result = run(base_args(devices=[I1, I2, I3], concurrency=1))
    assert kind == "fail"
    assert len(api.requests) == 1
    assert result["changed"] is False
    assert result["msg"].endswith("3 of 3 resets failed or were not attempted")


def test_rate_limit_paces_every_reset():
    waits = []
    real_wait = StartPacer.wait

    def counting_wait(self):
        waits.append(self.interval)
        real_wait(self)

    with ScriptedAPI() as api, mock.patch.object(StartPacer, "wait", counting_wait):
        for iccid in (I1, I2, I3):
            api.expect("PUT", "Sim/Reset", body(iccid), update_answer())
        kind, result = run(base_args(devices=[I1, I2, I3], rate_limit=1000.0))
    assert kind == "exit"
    assert waits == [0.001] * 3


def test_no_rate_limit_means_no_pacing():
    with ScriptedAPI() as api, mock.patch.object(StartPacer, "wait", side_effect=AssertionError("paced")):
        api.expect("PUT", "Sim/Reset", body(I1), update_answer())
        kind, _result = run(base_args(devices=[I1]))
    assert kind == "exit"


@pytest.mark.parametrize("overrides, fragment", [
    ({"iccid": "x1"}, "iccid must contain digits only"),
    ({"devices": [I1, I2, {"iccid": True}]}, "devices[2] (ICCID ?): iccid must be a string"),
    ({"devices": [I1], "rate_limit": float("nan")}, "rate_limit"),
    ({"devices": [I1], "concurrency": 257}, "concurrency"),
])
def test_bad_input_fails_before_any_request(overrides, fragment):
    with ScriptedAPI() as api:
        kind, result = run(base_args(**overrides))
    assert kind == "fail"
    assert fragment in result["msg"]
    assert api.requests == []


def test_the_key_is_in_no_output(capsys):
    with ScriptedAPI() as api:
        api.expect("PUT", "Sim/Reset", body(I1), error_answer(500, f"key {API_KEY} broke it"))
        output = run_module_output(monoz_sim_reset, base_args(iccid=I1), capsys)
    assert output["failed"] is True
    assert API_KEY not in json.dumps(output)
