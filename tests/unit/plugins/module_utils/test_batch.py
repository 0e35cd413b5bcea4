# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""BatchRun: order per device, parallelism across devices, failures and 401 stops."""

from __future__ import annotations

import threading

from ansible_collections.monoz.link.plugins.module_utils._api_client import (
    MonozAPIError,
    MonozAuthError,
    MonozTransportError,
    PublishResult,
)
from ansible_collections.monoz.link.plugins.module_utils._batch import BatchRun, summarise
from ansible_collections.monoz.link.plugins.module_utils._downlink_input import (
    build_batch,
    downlink_digest,
)
from ansible_collections.monoz.link.plugins.module_utils._journal import Journal
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY, PUBLISHED

ORG = "mti"
DEFAULTS = {"payload": "m", "format": None, "topic": "", "qos": 0, "retain": None}
WAIT = 10  # seconds; only ever reached when the code under test is wrong


class FakeClient:
    """Answers publish() through ``handler(body) -> PublishResult`` and records every call."""

    def __init__(self, handler=None) -> None:
        self.org_id = ORG
        self.handler = handler or (lambda body: PublishResult(200, dict(PUBLISHED), 1))
        self.calls: list[dict] = []
        self.threads: set[str] = set()
        self._lock = threading.Lock()

    def publish(self, body: dict) -> PublishResult:
        with self._lock:
            self.calls.append(body)
            self.threads.add(threading.current_thread().name)
        return self.handler(body)

    def redact(self, text: str) -> str:
        return text.replace(API_KEY, "********")

    def close(self) -> None:
        pass


def downlinks_for(devices):
    return build_batch(ORG, devices, DEFAULTS)


def api_error(status: int, message: str, cls=MonozAPIError):
    return cls(f"HTTP {status} for ICCID x: {message}", PublishResult(status, {"Message": message}, 1))


def test_results_come_back_in_input_order():
    devices = [str(n) for n in range(1, 41)]
    results = BatchRun(FakeClient(), downlinks_for(devices), None, concurrency=8).run()
    assert [r["iccid"] for r in results] == devices
    assert all(r["status"] == "sent" for r in results)


def test_sent_result_has_status_code_response_and_attempts():
    client = FakeClient(lambda body: PublishResult(200, {"Message": "MessagePublished"}, 3))
    (result,) = BatchRun(client, downlinks_for(["7"]), None, concurrency=1).run()
    assert result == {"iccid": "7", "status": "sent", "status_code": 200,
                      "response": {"Message": "MessagePublished"}, "attempts": 3}


def test_every_body_is_sent_exactly_once():
    devices = [{"iccid": str(n % 7 + 1), "payload": f"m{n}"} for n in range(30)]
    client = FakeClient()
    BatchRun(client, downlinks_for(devices), None, concurrency=4).run()
    assert sorted(body["Message"] for body in client.calls) == sorted(f"m{n}" for n in range(30))


def test_same_iccid_goes_in_input_order_while_other_iccids_run_in_parallel():
    # A gets "config" then "reboot"; B runs while A's config is in flight.
    events = []
    b_started = threading.Event()
    config_may_finish = threading.Event()
    lock = threading.Lock()

    def handler(body):
        with lock:
            events.append(("start", body["ICCID"], body["Message"]))
        if body["Message"] == "config":
            # only returns once B is in flight: proves A and B overlap
            assert b_started.wait(WAIT), "B never started while A's config was in flight"
        if body["ICCID"] == "2":
            b_started.set()
            assert config_may_finish.wait(WAIT)
        with lock:
            events.append(("end", body["ICCID"], body["Message"]))
        if body["Message"] == "config":
            config_may_finish.set()
        return PublishResult(200, {}, 1)

    devices = [{"iccid": "1", "payload": "config"}, "2", {"iccid": "1", "payload": "reboot"}]
    results = BatchRun(FakeClient(handler), downlinks_for(devices), None, concurrency=2).run()
    assert [r["status"] for r in results] == ["sent", "sent", "sent"]
    a_events = [event for event in events if event[1] == "1"]
    assert a_events == [("start", "1", "config"), ("end", "1", "config"),
                        ("start", "1", "reboot"), ("end", "1", "reboot")]


def test_many_messages_to_one_iccid_never_overlap_and_keep_input_order():
    in_flight = {"count": 0, "max": 0}
    lock = threading.Lock()
    order = []

    def handler(body):
        with lock:
            in_flight["count"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["count"])
            order.append(body["Message"])
        with lock:
            in_flight["count"] -= 1
        return PublishResult(200, {}, 1)

    devices = [{"iccid": "5", "payload": f"step{n}"} for n in range(20)]
    BatchRun(FakeClient(handler), downlinks_for(devices), None, concurrency=8).run()
    assert order == [f"step{n}" for n in range(20)]
    assert in_flight["max"] == 1


def test_failure_in_a_chain_marks_later_same_iccid_messages_not_attempted():
    def handler(body):
        if body["Message"] == "config":
            raise api_error(404, "ICCID not found")
        return PublishResult(200, {}, 1)

    devices = [{"iccid": "1", "payload": "config"}, "2", {"iccid": "1", "payload": "reboot"},
               {"iccid": "1", "payload": "again"}]
    client = FakeClient(handler)
    results = BatchRun(client, downlinks_for(devices), None, concurrency=2).run()
    assert [r["status"] for r in results] == ["failed", "sent", "failed", "failed"]
    assert results[0]["status_code"] == 404
    assert results[0]["msg"] == "HTTP 404 for ICCID x: ICCID not found"
    for later in results[2:]:
        assert later["msg"].startswith("not attempted")
        assert later["attempts"] == 0
    assert [b["Message"] for b in client.calls if b["ICCID"] == "1"] == ["config"]


def test_transport_error_is_a_failed_result_without_status():
    def handler(body):
        raise MonozTransportError("Could not reach the API (stopping after 4 attempts)", 4)

    (result,) = BatchRun(FakeClient(handler), downlinks_for(["1"]), None, concurrency=1).run()
    assert result == {"iccid": "1", "status": "failed", "status_code": None, "response": None, "attempts": 4,
                      "msg": "Could not reach the API (stopping after 4 attempts)"}


def test_401_stops_the_batch_and_marks_the_rest_not_attempted():
    def handler(body):
        raise api_error(401, "Unauthorized", MonozAuthError)

    client = FakeClient(handler)
    devices = ["1", "2", "3", "4"]
    batch = BatchRun(client, downlinks_for(devices), None, concurrency=1)
    results = batch.run()
    assert len(client.calls) == 1
    assert [r["status"] for r in results] == ["failed"] * 4
    assert results[0]["status_code"] == 401
    for result in results[1:]:
        assert result["msg"].startswith("not attempted")
        assert "Unauthorized" in result["msg"]
        assert result["attempts"] == 0
    assert isinstance(batch.auth_failure, MonozAuthError)


def test_401_stops_new_requests_in_parallel_batches():
    first_call = threading.Event()
    holder = {}

    def handler(body):
        if not first_call.is_set():
            first_call.set()
            raise api_error(401, "Unauthorized", MonozAuthError)
        # requests already in flight finish only once the batch has stopped,
        # so the count below does not depend on thread scheduling
        assert holder["batch"]._stop.wait(WAIT)
        return PublishResult(200, {}, 1)

    client = FakeClient(handler)
    # one chain per device, far more chains than workers
    batch = BatchRun(client, downlinks_for([str(n) for n in range(1, 201)]), None, concurrency=4)
    holder["batch"] = batch
    results = batch.run()
    # at most the requests already in flight when the 401 came back
    assert len(client.calls) <= 4
    assert sum(r["status"] == "failed" for r in results) >= 200 - 3
    assert all(r["status"] in ("sent", "failed") for r in results)


def test_unexpected_exception_in_the_client_becomes_a_failed_result():
    def handler(body):
        if body["ICCID"] == "2":
            raise RuntimeError(f"boom with {API_KEY}")
        return PublishResult(200, {}, 1)

    results = BatchRun(FakeClient(handler), downlinks_for(["1", "2", "3"]), None, concurrency=2).run()
    assert [r["status"] for r in results] == ["sent", "failed", "sent"]
    assert results[1]["msg"].startswith("unexpected error: RuntimeError: boom")
    assert API_KEY not in results[1]["msg"]


def test_worker_threads_never_exceed_concurrency():
    concurrency = 3
    barrier = threading.Barrier(concurrency, timeout=WAIT)  # proves `concurrency` run at once
    state = {"in_flight": 0, "max": 0}
    lock = threading.Lock()

    def handler(body):
        with lock:
            state["in_flight"] += 1
            state["max"] = max(state["max"], state["in_flight"])
        barrier.wait()
        with lock:
            state["in_flight"] -= 1
        return PublishResult(200, {}, 1)

    client = FakeClient(handler)
    results = BatchRun(client, downlinks_for([str(n) for n in range(1, 13)]), None, concurrency=concurrency).run()
    assert [r["status"] for r in results] == ["sent"] * 12
    assert state["max"] == concurrency
    assert len(client.threads) <= concurrency


def test_fewer_devices_than_concurrency_starts_no_idle_workers():
    client = FakeClient()
    before = threading.active_count()
    BatchRun(client, downlinks_for(["1"]), None, concurrency=64).run()
    assert len(client.threads) == 1
    assert threading.active_count() == before


def _journal_with(tmp_path, downlinks, indices):
    journal = Journal(str(tmp_path / "j.jsonl")).load()
    journal.open_for_append()
    digests = [downlink_digest(ORG, d.body) for d in downlinks]
    for index in indices:
        journal.record(digests[index], ORG, downlinks[index].iccid, 200)
    return journal, digests


def test_journaled_devices_are_skipped_and_the_rest_recorded(tmp_path):
    downlinks = downlinks_for(["1", "2", "3"])
    journal, digests = _journal_with(tmp_path, downlinks, [1])
    client = FakeClient()
    results = BatchRun(client, downlinks, digests, journal, concurrency=2).run()
    journal.close()
    assert [r["status"] for r in results] == ["sent", "skipped", "sent"]
    assert results[1] == {"iccid": "2", "status": "skipped", "status_code": None, "response": None, "attempts": 0}
    assert sorted(b["ICCID"] for b in client.calls) == ["1", "3"]
    assert Journal(journal.path).load().digests == set(digests)


def test_failed_devices_are_not_journaled(tmp_path):
    downlinks = downlinks_for(["1", "2"])
    journal, digests = _journal_with(tmp_path, downlinks, [])

    def handler(body):
        if body["ICCID"] == "2":
            raise api_error(404, "nope")
        return PublishResult(200, {}, 1)

    BatchRun(FakeClient(handler), downlinks, digests, journal, concurrency=1).run()
    journal.close()
    assert Journal(journal.path).load().digests == {digests[0]}


def test_check_mode_plan_gives_would_send_and_makes_no_calls(tmp_path):
    downlinks = downlinks_for(["1", "2", "3"])
    journal, digests = _journal_with(tmp_path, downlinks, [2])
    client = FakeClient()
    results = BatchRun(client, downlinks, digests, journal, concurrency=2).plan()
    journal.close()
    assert [r["status"] for r in results] == ["would_send", "would_send", "skipped"]
    assert client.calls == []


def test_plan_without_client_works():
    results = BatchRun(None, downlinks_for(["1", "1"]), None, concurrency=2).plan()
    assert [(r["iccid"], r["status"]) for r in results] == [("1", "would_send"), ("1", "would_send")]


def test_summary_counts_each_status():
    results = [{"status": s} for s in ["sent", "sent", "failed", "skipped", "skipped", "skipped"]]
    summary = summarise(results)
    assert {key: summary[key] for key in ("total", "sent", "failed", "skipped")} == {
        "total": 6, "sent": 2, "failed": 1, "skipped": 3}


def test_summary_of_a_real_run():
    def handler(body):
        if body["ICCID"] == "2":
            raise api_error(500, "boom")
        return PublishResult(200, {}, 1)

    results = BatchRun(FakeClient(handler), downlinks_for(["1", "2", "3"]), None, concurrency=2).run()
    summary = summarise(results)
    assert (summary["total"], summary["sent"], summary["failed"], summary["skipped"]) == (3, 2, 1, 0)
