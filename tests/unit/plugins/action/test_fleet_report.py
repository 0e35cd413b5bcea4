# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet_report action: the plan, the tally, the lines the role prints, and the report file."""

from __future__ import annotations

import json
import os

import pytest

from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.monoz.link.plugins.action.fleet_report import STOP_401, ActionModule, rows_path

REPORT_KEYS = ["summary", "devices"]
SUMMARY_KEYS = ["total", "sent", "failed", "skipped"]
ROW_KEYS = ["iccid", "status", "status_code", "msg"]


def run(args: dict, check_mode: bool = False, playbook_dir: str = "/nonexistent") -> dict:
    """One call of the action, with real Task and PlayContext objects, as the role makes it."""
    play_context = PlayContext()
    connection = connection_loader.get("local", play_context, None)
    task = Task()
    task.args = args
    task.check_mode = check_mode
    loader = DataLoader()
    action = ActionModule(task, connection, play_context, loader, Templar(loader=loader), None)
    result = action.run(task_vars={"playbook_dir": playbook_dir})
    result["__task_args"] = task.args
    return result


def downlinks(count: int, first: int = 0) -> list:
    return [{"iccid": f"89882806660000{index:05d}", "payload": "x"} for index in range(first, first + count)]


def results(statuses: list, first: int = 0) -> list:
    rows = []
    for offset, status in enumerate(statuses):
        iccid = f"89882806660000{first + offset:05d}"
        code = {"sent": 200, "skipped": None, "would_send": None}.get(status, status)
        rows.append({"iccid": iccid, "status": "failed" if isinstance(status, int) else status,
                     "status_code": code, "attempts": 1,
                     "msg": f"HTTP {status} for ICCID {iccid}: no" if isinstance(status, int) else None})
    return rows


def read_report(path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def test_start_plans_the_batches_and_hands_out_only_the_first(tmp_path):
    fleet = downlinks(2501)
    result = run({"downlinks": fleet, "batch_size": 1000, "path": str(tmp_path / "r.json")})

    assert result.get("failed") is not True, result
    assert result["changed"] is False
    tally = result["tally"]
    assert (tally["total"], tally["batch_count"], tally["path"]) == (2501, 3, str(tmp_path / "r.json"))
    assert (tally["sent"], tally["failed"], tally["skipped"], tally["would_send"], tally["stop"]) == (0, 0, 0, 0, "")
    assert result["msg"] == "fleet_push: 2,501 device(s) in 3 batch(es)"
    # ansible-playbook gets one batch back, never the fleet: not in the
    # result, not in the task's arguments, not at -v.
    assert result["batch_devices"] == fleet[:1000]
    assert "downlinks" not in result
    assert result["__task_args"]["downlinks"] == "(2501 items, spooled)"
    assert result["_ansible_verbose_override"] is True
    run({"tally": tally, "final": True})


def test_each_batch_hands_out_the_next_one_and_the_final_call_removes_the_spool():
    fleet = downlinks(5)
    fleet[3]["payload"] = {"text": "line\u2028separator \u0085 é", "n": 1.50}
    fleet[4]["payload"] = '{"a": 1e3, "a": 2}'
    plan = run({"downlinks": fleet, "batch_size": 2})
    spool = plan["tally"]["spool"]
    assert os.path.exists(spool) and oct(os.stat(spool).st_mode & 0o777) == "0o600"
    handed = [plan["batch_devices"]]
    previous = plan
    for batch in (1, 2, 3):
        previous = run({"tally": previous["tally"], "batch": batch,
                        "results": results(["sent"] * len(handed[-1]), first=2 * (batch - 1))})
        handed.append(previous["batch_devices"])
    assert handed == [fleet[0:2], fleet[2:4], fleet[4:5], []]
    run({"tally": previous["tally"], "final": True})
    assert not os.path.exists(spool)


def test_start_writes_an_empty_report_in_the_design_format(tmp_path):
    report = tmp_path / "r.json"
    report.write_text("an older push's report")
    run({"downlinks": downlinks(3), "path": str(report)})

    written = read_report(report)
    assert list(written) == REPORT_KEYS
    assert written == {"summary": {"total": 3, "sent": 0, "failed": 0, "skipped": 0}, "devices": []}


def test_start_resolves_a_relative_report_path_against_the_playbook_directory(tmp_path):
    (tmp_path / "reports").mkdir()
    result = run({"downlinks": downlinks(1), "path": "reports/r.json"}, playbook_dir=str(tmp_path))
    assert result["tally"]["path"] == str(tmp_path / "reports" / "r.json")
    assert read_report(tmp_path / "reports" / "r.json")["summary"]["total"] == 1


def test_start_with_an_unwritable_report_fails_naming_the_path(tmp_path):
    path = tmp_path / "missing-dir" / "r.json"
    with pytest.raises(AnsibleActionFail, match=f"cannot write the report {path}"):
        run({"downlinks": downlinks(1), "path": str(path)})


def test_an_empty_fleet_has_no_batch_and_an_empty_report(tmp_path):
    report = tmp_path / "r.json"
    plan = run({"downlinks": [], "path": str(report)})
    assert plan["tally"]["batch_count"] == 0
    final = run({"tally": plan["tally"], "final": True})
    assert final.get("failed") is not True
    assert final["msg"] == f"fleet_push: 0 device(s): 0 sent, 0 failed, 0 skipped; report {report}"
    assert read_report(report) == {"summary": {"total": 0, "sent": 0, "failed": 0, "skipped": 0}, "devices": []}


def test_batches_add_up_and_each_rewrites_the_whole_report(tmp_path):
    report = tmp_path / "r.json"
    plan = run({"downlinks": downlinks(2500), "batch_size": 1000, "path": str(report)})
    first = run({"tally": plan["tally"], "batch": 1, "results": results(["sent"] * 990 + [404] * 10)})
    assert first["msg"] == "batch 1/3: 990 sent, 10 failed, 0 skipped"
    assert read_report(report)["summary"] == {"total": 2500, "sent": 990, "failed": 10, "skipped": 0}
    second = run({"tally": first["tally"], "batch": 2,
                  "results": results(["skipped"] * 500 + ["sent"] * 500, first=1000)})
    assert second["msg"] == "batch 2/3: 1,490 sent, 10 failed, 500 skipped"

    written = read_report(report)
    assert written["summary"] == {"total": 2500, "sent": 1490, "failed": 10, "skipped": 500}
    rows = written["devices"]
    assert len(rows) == 2000 and all(list(row) == ROW_KEYS for row in rows)
    assert rows[0] == {"iccid": "8988280666000000000", "status": "sent", "status_code": 200, "msg": None}
    assert rows[990] == {"iccid": "8988280666000000990", "status": "failed", "status_code": 404,
                         "msg": "HTTP 404 for ICCID 8988280666000000990: no"}
    assert [row["iccid"] for row in rows] == [f"89882806660000{index:05d}" for index in range(2000)]
    # One report line per device, so a person can read it with less.
    assert report.read_text().count("\n") == 2000 + 2


def test_the_tally_keeps_the_first_failure(tmp_path):
    plan = run({"downlinks": downlinks(4), "batch_size": 2})
    first = run({"tally": plan["tally"], "batch": 1, "results": results(["sent", 500])})
    second = run({"tally": first["tally"], "batch": 2, "results": results([404, "sent"], first=2)})
    assert second["tally"]["first_failure"] == {"iccid": "8988280666000000001",
                                                "msg": "HTTP 500 for ICCID 8988280666000000001: no"}


def test_a_401_stops_the_push_and_later_batches_are_reported_not_attempted(tmp_path):
    report = tmp_path / "r.json"
    plan = run({"downlinks": downlinks(6), "batch_size": 2, "path": str(report)})
    refused = run({"tally": plan["tally"], "batch": 1, "results": results([401, 401])})
    assert refused["tally"]["stop"] == STOP_401
    assert refused["msg"] == f"batch 1/3: 0 sent, 2 failed, 0 skipped; no further batch starts: {STOP_401}"

    assert refused["batch_devices"] == []  # nothing more to send
    later = run({"tally": refused["tally"], "batch": 2})
    assert later["msg"] == "batch 2/3: 0 sent, 4 failed, 0 skipped"
    rows = read_report(report)["devices"]
    assert rows[2] == {"iccid": "8988280666000000002", "status": "failed", "status_code": None,
                       "msg": f"not attempted: the push stopped because {STOP_401}"}

    final = run({"tally": later["tally"], "final": True})
    assert final["failed"] is True
    assert final["msg"] == (
        f"fleet_push: 4 of 6 device(s) failed; stopped early because {STOP_401}; first failure:"
        f" ICCID 8988280666000000000: HTTP 401 for ICCID 8988280666000000000: no; see the report {report}"
    )


def test_a_batch_without_results_failed_as_a_whole_and_stops_the_push():
    plan = run({"downlinks": downlinks(3), "batch_size": 2})
    whole = run({"tally": plan["tally"], "batch": 1, "msg": "missing required arguments: api_key"})
    tally = whole["tally"]
    assert tally["failed"] == 2
    assert tally["stop"] == "batch 1/2 failed as a whole: missing required arguments: api_key"
    assert tally["first_failure"] == {"iccid": "8988280666000000000", "msg": "missing required arguments: api_key"}

    final = run({"tally": run({"tally": tally, "batch": 2})["tally"], "final": True})
    assert final["failed"] is True
    assert final["msg"].startswith("fleet_push: 3 of 3 device(s) failed; stopped early because batch 1/2 failed"
                                   " as a whole: missing required arguments: api_key; first failure:")


@pytest.mark.parametrize("failed, stops", [(2, False), (3, True)])
def test_max_failures_stops_once_more_devices_than_it_failed(failed, stops):
    plan = run({"downlinks": downlinks(10), "batch_size": 5})
    after = run({"tally": plan["tally"], "batch": 1, "max_failures": 2,
                 "results": results([500] * failed + ["sent"] * (5 - failed))})
    expected = "more than fleet_push_max_failures (2) devices failed" if stops else ""
    assert after["tally"]["stop"] == expected


def test_check_mode_counts_would_send_and_writes_nothing(tmp_path):
    report = tmp_path / "r.json"
    plan = run({"downlinks": downlinks(2), "path": str(report)}, check_mode=True)
    after = run({"tally": plan["tally"], "batch": 1, "results": results(["would_send"] * 2)}, check_mode=True)
    assert after["msg"] == "batch 1/1: 0 sent, 0 failed, 0 skipped, 2 would send"
    final = run({"tally": after["tally"], "final": True}, check_mode=True)
    assert final["msg"] == "fleet_push: 2 device(s): 0 sent, 0 failed, 0 skipped, 2 would send"
    assert final["summary"] == {"total": 2, "sent": 0, "failed": 0, "skipped": 0, "would_send": 2}
    assert not report.exists() and not (tmp_path / rows_path(str(report))).exists()


def test_the_summary_line_names_the_shard_and_the_report_and_the_rows_file_goes(tmp_path):
    report = tmp_path / "r.json"
    plan = run({"downlinks": downlinks(1234), "batch_size": 2000, "path": str(report),
                "shard_index": 1, "shard_count": 3})
    after = run({"tally": plan["tally"], "batch": 1, "results": results(["sent"] * 1234)})
    assert (tmp_path / f".{report.name}.rows.jsonl").exists()
    final = run({"tally": after["tally"], "final": True})
    assert final.get("failed") is not True
    assert final["msg"] == (f"fleet_push: 1,234 device(s) in shard index 1 of 3 shards: 1,234 sent, 0 failed,"
                            f" 0 skipped; report {report}")
    assert not (tmp_path / f".{report.name}.rows.jsonl").exists()
    assert read_report(report)["summary"]["sent"] == 1234


@pytest.mark.parametrize("args, message", [
    ({}, "one of the following is required: downlinks, tally"),
    ({"downlinks": [], "tally": {}}, "parameters are mutually exclusive: downlinks|tally"),
    ({"downlinks": [], "batch_size": 0}, "batch_size must be at least 1"),
    ({"tally": {}}, "give downlinks (start), batch or final=true"),
])
def test_bad_arguments_fail_naming_the_problem(args, message):
    with pytest.raises(AnsibleActionFail, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")):
        run(args)
