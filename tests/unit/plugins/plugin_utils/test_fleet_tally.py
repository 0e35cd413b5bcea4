# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The tally of a fleet push, the lines built from it, and the report file that is whole after every batch."""

from __future__ import annotations

import json
import os
import stat

import pytest

from ansible_collections.monoz.link.plugins.plugin_utils._fleet_tally import STOP_401, ReportFile, Tally

ROW_KEYS = ["iccid", "status", "status_code", "msg"]


def iccid(index: int) -> str:
    return f"89882806660000{index:05d}"


def downlinks(count: int, first: int = 0) -> list:
    return [{"iccid": iccid(index), "payload": "x"} for index in range(first, first + count)]


def answer(*statuses, first: int = 0) -> dict:
    """A monoz_downlink result: ``statuses`` are status names, or HTTP codes for failed devices."""
    results = []
    for offset, status in enumerate(statuses):
        device = iccid(first + offset)
        if isinstance(status, int):
            results.append({"iccid": device, "status": "failed", "status_code": status, "attempts": 2,
                            "msg": f"HTTP {status} for ICCID {device}"})
        else:
            results.append({"iccid": device, "status": status, "status_code": 200 if status == "sent" else None,
                            "attempts": 1, "msg": None})
    return {"changed": True, "results": results}


# -- count_batch ---------------------------------------------------------------------

def test_a_batch_adds_each_status_and_returns_one_row_per_device_with_the_report_keys():
    tally = Tally(total=5, batch_count=1)
    rows = tally.count_batch(1, downlinks(5), answer("sent", "sent", 404, "skipped", "would_send"), None)
    assert (tally.sent, tally.failed, tally.skipped, tally.would_send, tally.stop) == (2, 1, 1, 1, "")
    assert all(list(row) == ROW_KEYS for row in rows)  # attempts and any other key are dropped
    assert rows[2] == {"iccid": iccid(2), "status": "failed", "status_code": 404,
                       "msg": f"HTTP 404 for ICCID {iccid(2)}"}
    assert [row["iccid"] for row in rows] == [iccid(index) for index in range(5)]


def test_counts_add_up_across_batches_and_the_first_failure_is_kept():
    tally = Tally(total=6, batch_count=3)
    tally.count_batch(1, downlinks(2), answer("sent", "sent"), None)
    tally.count_batch(2, downlinks(2, 2), answer(500, "sent", first=2), None)
    tally.count_batch(3, downlinks(2, 4), answer(404, 503, first=4), None)
    assert tally.summary() == {"total": 6, "sent": 3, "failed": 3, "skipped": 0, "would_send": 0}
    assert tally.report_summary() == {"total": 6, "sent": 3, "failed": 3, "skipped": 0}
    assert tally.first_failure == {"iccid": iccid(2), "msg": f"HTTP 500 for ICCID {iccid(2)}"}
    assert tally.stop == ""


def test_a_status_the_tally_does_not_know_is_reported_but_not_counted():
    tally = Tally(total=1, batch_count=1)
    rows = tally.count_batch(1, downlinks(1), {"results": [{"iccid": iccid(0), "status": "queued"}]}, None)
    assert rows == [{"iccid": iccid(0), "status": "queued", "status_code": None, "msg": None}]
    assert tally.summary() == {"total": 1, "sent": 0, "failed": 0, "skipped": 0, "would_send": 0}


def test_a_401_stops_the_push():
    tally = Tally(total=4, batch_count=2)
    tally.count_batch(1, downlinks(2), answer("sent", 401), None)
    assert tally.stop == STOP_401


@pytest.mark.parametrize("max_failures, failures, stops", [
    (None, 5, False), (0, 0, False), (0, 1, True), (2, 2, False), (2, 3, True),
])
def test_max_failures_stops_only_once_more_devices_than_it_failed(max_failures, failures, stops):
    tally = Tally(total=5, batch_count=1)
    tally.count_batch(1, downlinks(5), answer(*([500] * failures + ["sent"] * (5 - failures))), max_failures)
    assert tally.stop == (f"more than fleet_push_max_failures ({max_failures}) devices failed" if stops else "")


def test_max_failures_counts_failures_of_earlier_batches():
    tally = Tally(total=4, batch_count=2)
    tally.count_batch(1, downlinks(2), answer(500, "sent"), 1)
    assert tally.stop == ""
    tally.count_batch(2, downlinks(2, 2), answer("sent", 500, first=2), 1)
    assert tally.stop == "more than fleet_push_max_failures (1) devices failed"


def test_a_401_is_the_reason_even_when_max_failures_is_also_passed():
    tally = Tally(total=3, batch_count=1)
    tally.count_batch(1, downlinks(3), answer(401, 401, 401), 0)
    assert tally.stop == STOP_401


@pytest.mark.parametrize("result, reason", [
    ({"failed": True, "msg": "missing required arguments: org_id"}, "missing required arguments: org_id"),
    ({"failed": True}, "the module call failed"),
    ({"failed": True, "msg": "", "results": None}, "the module call failed"),
    ({"failed": True, "msg": "bad", "results": "not a list"}, "bad"),
])
def test_a_result_without_a_results_list_failed_as_a_whole_and_stops_the_push(result, reason):
    tally = Tally(total=5, batch_count=3)
    rows = tally.count_batch(2, downlinks(2, 2), result, None)
    assert rows == [{"iccid": iccid(index), "status": "failed", "status_code": None, "msg": reason}
                    for index in (2, 3)]
    assert tally.failed == 2
    assert tally.stop == f"batch 2/3 failed as a whole: {reason}"
    assert tally.first_failure == {"iccid": iccid(2), "msg": reason}


def test_a_batch_not_attempted_is_all_failed_with_the_reason_and_keeps_the_first_stop():
    tally = Tally(total=6, batch_count=3)
    tally.count_batch(1, downlinks(2), answer(401, "sent"), 0)
    rows = tally.count_batch(2, downlinks(2, 2), None, 0)
    assert rows == [{"iccid": iccid(index), "status": "failed", "status_code": None,
                     "msg": f"not attempted: the push stopped because {STOP_401}"} for index in (2, 3)]
    assert tally.stop == STOP_401
    assert tally.failed == 3
    assert tally.first_failure == {"iccid": iccid(0), "msg": f"HTTP 401 for ICCID {iccid(0)}"}


def test_an_empty_batch_result_counts_nothing():
    tally = Tally(total=0, batch_count=0)
    assert tally.count_batch(1, [], {"results": []}, 0) == []
    assert tally.summary()["failed"] == 0 and tally.stop == ""


# -- the lines -------------------------------------------------------------------------

def test_the_progress_line_has_thousands_separators_and_the_stop_only_when_it_happened():
    tally = Tally(total=20000, batch_count=20, sent=12345, failed=1000, skipped=2, stop=STOP_401)
    assert tally.progress_line(13) == "batch 13/20: 12,345 sent, 1,000 failed, 2 skipped"
    assert tally.progress_line(13, True) == (f"batch 13/20: 12,345 sent, 1,000 failed, 2 skipped;"
                                             f" no further batch starts: {STOP_401}")


def test_in_check_mode_the_lines_count_would_send():
    tally = Tally(total=1500, batch_count=2, check_mode=True, would_send=1500, path="/r.json")
    assert tally.progress_line(2) == "batch 2/2: 0 sent, 0 failed, 0 skipped, 1,500 would send"
    # No report is written in check mode, so none is named.
    assert tally.summary_line() == "fleet_push: 1,500 device(s): 0 sent, 0 failed, 0 skipped, 1,500 would send"


@pytest.mark.parametrize("kwargs, line", [
    ({}, "fleet_push: 1,234 device(s): 1,234 sent, 0 failed, 0 skipped"),
    ({"path": "/var/tmp/r.json"},
     "fleet_push: 1,234 device(s): 1,234 sent, 0 failed, 0 skipped; report /var/tmp/r.json"),
    ({"shard_index": 1, "shard_count": 3},
     "fleet_push: 1,234 device(s) in shard index 1 of 3 shards: 1,234 sent, 0 failed, 0 skipped"),
])
def test_the_summary_line_names_the_shard_and_the_report(kwargs, line):
    assert Tally(total=1234, batch_count=2, sent=1234, **kwargs).summary_line() == line


def test_the_failure_message_names_the_first_failure_the_stop_and_the_report():
    tally = Tally(total=3000, batch_count=3, path="/r.json")
    tally.count_batch(1, downlinks(2), answer("sent", 401), None)
    tally.count_batch(2, downlinks(2, 2), None, None)
    assert tally.failure_message() == (
        f"fleet_push: 3 of 3,000 device(s) failed; stopped early because {STOP_401};"
        f" first failure: ICCID {iccid(1)}: HTTP 401 for ICCID {iccid(1)}; see the report /r.json"
    )


def test_the_failure_message_without_a_stop_or_report():
    tally = Tally(total=2, batch_count=1)
    tally.count_batch(1, downlinks(2), answer("sent", 404), None)
    assert tally.failure_message() == (f"fleet_push: 1 of 2 device(s) failed; first failure: ICCID {iccid(1)}:"
                                       f" HTTP 404 for ICCID {iccid(1)}")


# -- the report file -------------------------------------------------------------------

def read(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def test_a_new_report_with_no_rows_is_valid_json_and_replaces_an_old_file(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("x" * 5000)  # an older, longer report
    ReportFile(str(path), {"total": 0, "sent": 0, "failed": 0, "skipped": 0})
    report = read(path)
    assert report == {"summary": {"total": 0, "sent": 0, "failed": 0, "skipped": 0}, "devices": []}
    assert list(report) == ["summary", "devices"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_an_empty_append_rewrites_only_the_summary(tmp_path):
    path = tmp_path / "r.json"
    report = ReportFile(str(path), {"total": 3, "sent": 0, "failed": 0, "skipped": 0})
    report.append([], {"total": 3, "sent": 0, "failed": 3, "skipped": 0})
    assert read(path) == {"summary": {"total": 3, "sent": 0, "failed": 3, "skipped": 0}, "devices": []}


def test_the_report_is_whole_after_every_one_of_many_appends(tmp_path):
    path = tmp_path / "r.json"
    tally = Tally(total=0, batch_count=0)
    report = ReportFile(str(path), tally.report_summary())
    expected = []
    sizes = [1, 0, 7, 1000, 3, 0, 250] * 5
    for batch, size in enumerate(sizes, 1):
        first = len(expected)
        statuses = [("sent", "skipped", 503, 404)[(first + i) % 4] for i in range(size)]
        rows = tally.count_batch(batch, downlinks(size, first), answer(*statuses, first=first), None)
        expected.extend(rows)
        report.append(rows, tally.report_summary())
        written = read(path)
        assert written["summary"] == tally.report_summary()
        assert written["devices"] == expected
    assert len(expected) == sum(sizes)
    assert tally.failed == sum(1 for index in range(len(expected)) if index % 4 >= 2)
    # One device per line, so that a person can read the report with less or grep.
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert len(lines) == len(expected) + 2
    assert json.loads(lines[1].rstrip(",")) == expected[0]


def test_rows_keep_any_text_and_the_summary_can_grow_without_breaking_the_file(tmp_path):
    path = tmp_path / "r.json"
    report = ReportFile(str(path), {"total": 1, "sent": 0, "failed": 0, "skipped": 0})
    rows = [{"iccid": iccid(0), "status": "failed", "status_code": 500, "msg": 'Zürich "quoted"\n]}\n\u2028 end'},
            {"iccid": iccid(1), "status": "sent", "status_code": 200, "msg": None}]
    report.append(rows, {"total": 10 ** 15, "sent": 10 ** 15 - 1, "failed": 1, "skipped": 0})
    report.append([], {"total": 1, "sent": 1, "failed": 0, "skipped": 0})  # and shrink again
    assert read(path) == {"summary": {"total": 1, "sent": 1, "failed": 0, "skipped": 0}, "devices": rows}
