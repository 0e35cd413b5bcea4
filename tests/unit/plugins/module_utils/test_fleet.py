# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""FleetRun, the engine of every module: order, chains per ICCID, 401 stops, every item a result."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.monoz.link.plugins.module_utils._api_client import (
    ApiResult,
    MonozAPIError,
    MonozAuthError,
    MonozTransportError,
)
from ansible_collections.monoz.link.plugins.module_utils._fleet import FleetRun, Operation, error_fields, summarise
from ansible_collections.monoz.link.plugins.module_utils._targets import Target
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY

WAIT = 10  # seconds; only ever reached when the code under test is wrong


class Probe(Operation):
    """An operation that calls ``handler(target)`` and records every call and thread."""

    earlier = "probe of this ICCID in this batch"

    def __init__(self, handler=None) -> None:
        self.handler = handler or (lambda target: None)
        self.calls: list = []
        self.threads: set = set()
        self._lock = threading.Lock()

    def perform(self, index, item):
        with self._lock:
            self.calls.append((index, item.iccid))
            self.threads.add(threading.current_thread().name)
        self.handler(item)
        return {"iccid": item.iccid, "status": "ok", "index": index}

    def plan(self, index, item):
        return {"iccid": item.iccid, "status": "would", "index": index}

    def failure(self, index, item, msg, error=None):
        status_code, _response, attempts = error_fields(error)
        return {"iccid": item.iccid, "status": "failed", "index": index, "msg": msg, "status_code": status_code,
                "attempts": attempts}

    def redact(self, text):
        return text.replace(API_KEY, "********")


def targets(*iccids) -> list:
    return [Target(iccid) for iccid in iccids]


def auth_error():
    return MonozAuthError("HTTP 401 Unauthorized for ICCID 1: Unauthorized", ApiResult(401, {"Message": "no"}, 1))


def test_results_come_back_in_input_order_with_every_item_done_once():
    items = targets(*(str(n) for n in range(1, 101)))
    probe = Probe()
    results = FleetRun(items, probe, concurrency=8).run()
    assert [(r["index"], r["iccid"]) for r in results] == [(n, str(n + 1)) for n in range(100)]
    assert sorted(probe.calls) == [(n, str(n + 1)) for n in range(100)]


def test_items_of_one_iccid_run_in_input_order_never_overlapping():
    in_flight = {"now": 0, "max": 0}
    lock = threading.Lock()

    def handler(target):
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        with lock:
            in_flight["now"] -= 1

    probe = Probe(handler)
    FleetRun(targets(*["5"] * 20), probe, concurrency=8).run()
    assert [index for index, _iccid in probe.calls] == list(range(20))
    assert in_flight["max"] == 1


def test_different_iccids_run_in_parallel_up_to_concurrency():
    concurrency = 4
    barrier = threading.Barrier(concurrency, timeout=WAIT)  # passes only with 4 in flight at once
    probe = Probe(lambda target: barrier.wait())
    results = FleetRun(targets(*(str(n) for n in range(8))), probe, concurrency=concurrency).run()
    assert [r["status"] for r in results] == ["ok"] * 8
    assert len(probe.threads) == concurrency


def test_one_chain_runs_in_the_calling_thread_without_starting_workers():
    probe = Probe()
    before = threading.active_count()
    FleetRun(targets("1", "1"), probe, concurrency=64).run()
    assert probe.threads == {threading.current_thread().name}
    assert threading.active_count() == before


def test_failure_marks_later_items_of_that_iccid_not_attempted_and_others_go_on():
    def handler(target):
        if target.iccid == "1":
            raise MonozAPIError("HTTP 404 Not Found for ICCID 1: gone", ApiResult(404, {"Message": "gone"}, 1))

    probe = Probe(handler)
    results = FleetRun(targets("1", "2", "1"), probe, concurrency=2).run()
    assert [r["status"] for r in results] == ["failed", "ok", "failed"]
    assert results[0]["msg"] == "HTTP 404 Not Found for ICCID 1: gone"
    assert results[0]["status_code"] == 404
    assert results[2]["msg"] == "not attempted: an earlier probe of this ICCID in this batch failed"
    assert results[2]["status_code"] is None and results[2]["attempts"] == 0
    assert [call for call in probe.calls if call[1] == "1"] == [(0, "1")]


def test_401_stops_the_fleet_and_every_unattempted_item_says_why():
    def handler(target):
        raise auth_error()

    probe = Probe(handler)
    fleet = FleetRun(targets("1", "2", "3"), probe, concurrency=1)
    results = fleet.run()
    assert len(probe.calls) == 1
    assert isinstance(fleet.auth_failure, MonozAuthError)
    assert results[0]["status_code"] == 401
    for result in results[1:]:
        assert result["status"] == "failed"
        assert result["msg"] == ("not attempted: the batch stopped after HTTP 401 Unauthorized for ICCID 1:"
                                 " Unauthorized")


def test_401_in_a_parallel_fleet_starts_no_new_item():
    first = threading.Event()
    holder = {}

    def handler(target):
        if not first.is_set():
            first.set()
            raise auth_error()
        # in-flight items finish only once the fleet has stopped
        assert holder["fleet"]._stop.wait(WAIT)

    probe = Probe(handler)
    fleet = FleetRun(targets(*(str(n) for n in range(200))), probe, concurrency=4)
    holder["fleet"] = fleet
    results = fleet.run()
    assert len(probe.calls) <= 4
    assert sum(r["status"] == "failed" for r in results) >= 197
    assert all(r is not None for r in results)


def test_transport_error_is_a_failed_item_with_attempts():
    def handler(target):
        raise MonozTransportError("Could not reach the API (stopping after 4 attempts)", 4)

    (result,) = FleetRun(targets("1"), Probe(handler)).run()
    assert (result["status"], result["status_code"], result["attempts"]) == ("failed", None, 4)


def test_unexpected_exception_is_a_failed_item_with_the_key_redacted():
    def handler(target):
        if target.iccid == "2":
            raise RuntimeError(f"boom {API_KEY}")

    results = FleetRun(targets("1", "2", "3"), Probe(handler), concurrency=2).run()
    assert [r["status"] for r in results] == ["ok", "failed", "ok"]
    assert results[1]["msg"] == "unexpected error: RuntimeError: boom ********"


def test_settled_items_get_their_result_without_being_performed():
    class Settling(Probe):
        def settled(self, index, item):
            return {"iccid": item.iccid, "status": "skipped", "index": index} if item.iccid == "2" else None

    probe = Settling()
    results = FleetRun(targets("1", "2", "3"), probe, concurrency=2).run()
    assert [r["status"] for r in results] == ["ok", "skipped", "ok"]
    assert sorted(iccid for _index, iccid in probe.calls) == ["1", "3"]


def test_plan_calls_plan_for_every_item_and_performs_nothing():
    probe = Probe()
    results = FleetRun(targets("1", "1", "2"), probe, concurrency=2).plan()
    assert [(r["iccid"], r["status"]) for r in results] == [("1", "would"), ("1", "would"), ("2", "would")]
    assert probe.calls == []


def test_an_empty_fleet_has_no_results():
    assert FleetRun([], Probe()).run() == []


@pytest.mark.parametrize("statuses", [("ok", "failed"), ("sent", "would_send", "failed")])
def test_summary_has_total_then_every_status_zeros_included(statuses):
    results = [{"status": statuses[0]}, {"status": "failed"}, {"status": statuses[0]}]
    summary = summarise(results, statuses)
    assert list(summary) == ["total", *statuses]
    assert summary["total"] == 3 and summary[statuses[0]] == 2 and summary["failed"] == 1
    assert all(summary[status] == 0 for status in statuses[1:-1])


def test_error_fields_of_each_kind_of_error():
    api = MonozAPIError("x", ApiResult(404, {"Message": "m"}, 2))
    assert error_fields(api) == (404, {"Message": "m"}, 2)
    assert error_fields(MonozTransportError("t", 3)) == (None, None, 3)
    assert error_fields(None) == (None, None, 0)
