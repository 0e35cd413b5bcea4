# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""monoz_sim: read, then PUT only where the state differs; check mode, diff, fleets, failures."""

from __future__ import annotations

import json
import threading

import pytest

from ansible_collections.monoz.link.plugins.module_utils import _api_client
from ansible_collections.monoz.link.plugins.modules import monoz_sim
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY, API_URL, ORG_ID, WireTransport
from ansible_collections.monoz.link.tests.unit.plugins.modules.module_harness import (
    ScriptedAPI,
    api_answer,
    base_args,
    enabled_answer,
    error_answer,
    run_module,
    run_module_output,
    update_answer,
)

I1, I2, I3, I4 = (f"898828066600000000{n}" for n in range(1, 5))
ORG_URL = f"{API_URL}/{ORG_ID}"


def get_path(iccid: str) -> str:
    return f"Sim/Enable/{iccid}"


def put_body(iccid: str, enable: bool) -> dict:
    return {"ICCID": iccid, "Enable": enable}


def run(args):
    return run_module(monoz_sim, args)


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch):
    monkeypatch.setattr(_api_client, "backoff_delay", lambda retry_number, rng=None: 0.0)


class SimStore:
    """A stateful stand-in for the two SIM endpoints: what the PUTs set, the GETs read back."""

    def __init__(self, states: dict) -> None:
        self.states = dict(states)
        self.requests: list = []
        self._lock = threading.Lock()

    def __call__(self, wire):
        with self._lock:
            self.requests.append((wire.method, wire.url[len(ORG_URL) + 1:], json.loads(wire.body) if wire.body else None))
            assert wire.headers["X-API-Key"] == API_KEY
            if wire.method == "GET":
                return enabled_answer(self.states[wire.url.rsplit("/", 1)[1]])
            assert (wire.method, wire.url) == ("PUT", f"{ORG_URL}/Sim/Enable")
            body = json.loads(wire.body)
            assert set(body) == {"ICCID", "Enable"} and isinstance(body["Enable"], bool)
            self.states[body["ICCID"]] = body["Enable"]
            return update_answer()

    def puts(self) -> list:
        return [request for request in self.requests if request[0] == "PUT"]


# --- single SIM --------------------------------------------------------------

def test_disabling_an_enabled_sim_reads_then_puts_once_and_shows_the_diff():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, enabled_answer(True))
        api.expect("PUT", "Sim/Enable", put_body(I1, False), update_answer())
        kind, result = run(base_args(iccid=I1, state="disabled"))
    assert kind == "exit"
    assert api.calls() == [("GET", get_path(I1), None), ("PUT", "Sim/Enable", put_body(I1, False))]
    assert result["changed"] is True
    assert result["enabled"] is False
    assert result["diff"] == {"before": {"enabled": True}, "after": {"enabled": False}}


def test_a_sim_already_in_state_gets_no_put_and_reports_unchanged():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, enabled_answer(True))
        kind, result = run(base_args(iccid=I1, state="enabled"))
    assert kind == "exit"
    assert api.calls() == [("GET", get_path(I1), None)]
    assert result["changed"] is False
    assert result["enabled"] is True
    assert result["diff"] == {"before": {"enabled": True}, "after": {"enabled": True}}


def test_a_second_run_sends_no_put():
    store = SimStore({I1: True, I2: False, I3: True})
    with WireTransport(handler=store):
        kind, first = run(base_args(devices=[I1, I2, I3], state="disabled"))
    assert kind == "exit" and first["changed"] is True
    assert sorted(body["ICCID"] for _m, _p, body in store.puts()) == [I1, I3]
    store.requests.clear()
    with WireTransport(handler=store):
        kind, second = run(base_args(devices=[I1, I2, I3], state="disabled"))
    assert kind == "exit"
    assert store.puts() == []
    assert sorted(path for _m, path, _b in store.requests) == sorted(get_path(i) for i in (I1, I2, I3))
    assert second["changed"] is False
    assert [r["status"] for r in second["results"]] == ["unchanged"] * 3
    assert second["diff"] == []


def test_check_mode_reads_sends_no_put_and_reports_what_would_change():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, enabled_answer(False))
        kind, result = run(base_args(iccid=I1, state="enabled", _ansible_check_mode=True))
    assert kind == "exit"
    assert [call[0] for call in api.calls()] == ["GET"]
    assert result["changed"] is True
    assert result["enabled"] is True
    assert result["diff"] == {"before": {"enabled": False}, "after": {"enabled": True}}


def test_check_mode_on_a_sim_already_in_state_is_unchanged():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, enabled_answer(False))
        kind, result = run(base_args(iccid=I1, state="disabled", _ansible_check_mode=True))
    assert (kind, result["changed"], result["enabled"]) == ("exit", False, False)


def test_a_failed_put_is_not_retried_after_500_and_keeps_the_state_read():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, enabled_answer(True))
        api.expect("PUT", "Sim/Enable", put_body(I1, False), error_answer(500, "SIM service down"))
        kind, result = run(base_args(iccid=I1, state="disabled", retries=5))
    assert kind == "fail"
    assert result["msg"] == f"HTTP 500 Internal Server Error for ICCID {I1}: SIM service down"
    assert result["enabled"] is True
    assert result["changed"] is False


def test_a_failed_read_fails_without_any_put():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, error_answer(404, "ICCID not found"))
        kind, result = run(base_args(iccid=I1, state="disabled"))
    assert kind == "fail"
    assert result["msg"] == f"HTTP 404 Not Found for ICCID {I1}: ICCID not found"
    assert "enabled" not in result


def test_a_read_without_a_boolean_is_a_failure_and_nothing_is_written():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, api_answer(data={"Enabled": 1}))
        kind, result = run(base_args(iccid=I1, state="disabled"))
    assert kind == "fail"
    assert "no boolean Data.Enabled" in result["msg"]


# --- fleets ------------------------------------------------------------------

def test_fleet_results_statuses_summary_and_one_diff_per_changed_sim():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, enabled_answer(True))
        api.expect("PUT", "Sim/Enable", put_body(I1, False), update_answer())
        api.expect("GET", get_path(I2), None, enabled_answer(False))
        api.expect("GET", get_path(I3), None, error_answer(404, "ICCID not found"))
        api.expect("GET", get_path(I4), None, enabled_answer(True))
        api.expect("PUT", "Sim/Enable", put_body(I4, False), error_answer(500, "boom"))
        kind, result = run(base_args(devices=[I1, {"iccid": I2, "site": "x"}, I3, I4], state="disabled",
                                     concurrency=4))
    assert kind == "fail"
    assert result["results"] == [
        {"iccid": I1, "status": "changed", "before": True, "after": False},
        {"iccid": I2, "status": "unchanged", "before": False, "after": False},
        {"iccid": I3, "status": "failed", "before": None, "after": None,
         "msg": f"HTTP 404 Not Found for ICCID {I3}: ICCID not found"},
        {"iccid": I4, "status": "failed", "before": True, "after": True,
         "msg": f"HTTP 500 Internal Server Error for ICCID {I4}: boom"},
    ]
    assert result["summary"] == {"total": 4, "changed": 1, "unchanged": 1, "would_change": 0, "failed": 2}
    assert result["changed"] is True
    assert result["msg"] == (f"2 of 4 SIMs failed (1 changed, 1 unchanged); first failure: HTTP 404 Not Found for"
                             f" ICCID {I3}: ICCID not found")
    assert result["diff"] == [{"before_header": f"ICCID {I1}", "after_header": f"ICCID {I1}",
                               "before": {"enabled": True}, "after": {"enabled": False}}]


def test_fleet_check_mode_reads_every_sim_and_writes_none():
    store = SimStore({I1: True, I2: False, I3: True})
    with WireTransport(handler=store):
        kind, result = run(base_args(devices=[I1, I2, I3], state="disabled", _ansible_check_mode=True))
    assert kind == "exit"
    assert store.puts() == []
    assert store.states == {I1: True, I2: False, I3: True}
    assert [r["status"] for r in result["results"]] == ["would_change", "unchanged", "would_change"]
    assert result["summary"] == {"total": 3, "changed": 0, "unchanged": 1, "would_change": 2, "failed": 0}
    assert result["changed"] is True
    assert [d["before_header"] for d in result["diff"]] == [f"ICCID {I1}", f"ICCID {I3}"]


def test_fleet_401_on_a_read_stops_everything():
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, error_answer(401, "Unauthorized"))
        kind, result = run(base_args(devices=[I1, I2, I3], state="enabled", concurrency=1))
    assert kind == "fail"
    assert len(api.requests) == 1
    assert result["msg"].startswith("the batch stopped at HTTP 401 Unauthorized")
    assert all(r["msg"].startswith("not attempted") for r in result["results"][1:])


def test_duplicate_iccids_are_worked_in_order_so_the_second_sees_the_first_change():
    store = SimStore({I1: True})
    with WireTransport(handler=store):
        kind, result = run(base_args(devices=[I1, I1], state="disabled", concurrency=4))
    assert kind == "exit"
    assert [r["status"] for r in result["results"]] == ["changed", "unchanged"]
    assert len(store.puts()) == 1


# --- options and secrets -----------------------------------------------------

@pytest.mark.parametrize("overrides, fragment", [
    ({"iccid": I1}, "missing required arguments: state"),
    ({"iccid": I1, "state": "on"}, "state"),
    ({"devices": [I1, "x"], "state": "enabled"}, "devices[1] (ICCID x): iccid"),
    ({"devices": {"iccid": I1}, "state": "enabled"}, "devices"),
])
def test_bad_input_fails_before_any_request(overrides, fragment):
    with ScriptedAPI() as api:
        kind, result = run(base_args(**overrides))
    assert kind == "fail"
    assert fragment in result["msg"]
    assert api.requests == []


def test_the_key_is_in_no_output(capsys):
    with ScriptedAPI() as api:
        api.expect("GET", get_path(I1), None, error_answer(400, f"bad key {API_KEY}"))
        output = run_module_output(monoz_sim, base_args(iccid=I1, state="enabled"), capsys)
    assert output["failed"] is True
    assert API_KEY not in json.dumps(output)
