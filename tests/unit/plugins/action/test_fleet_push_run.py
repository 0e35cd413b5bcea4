# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet_push_run action: the role's whole push in one task.

Real Task, PlayContext, DataLoader and Templar objects; only the call of
monoz_downlink's own action plugin (``ActionModule._send``) is replaced by a
fake that records every batch it is given and answers like monoz_downlink.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.parsing.dataloader import DataLoader
from ansible.playbook.play_context import PlayContext
from ansible.playbook.task import Task
from ansible.plugins import loader as plugin_loader
from ansible.plugins.loader import connection_loader
from ansible.template import Templar

from ansible_collections.monoz.link.plugins.action import fleet_push_run
from ansible_collections.monoz.link.plugins.action.fleet_push_run import ROLE_VARIABLES, ActionModule
from ansible_collections.monoz.link.plugins.plugin_utils._fleet_tally import STOP_401
from ansible_collections.monoz.link.tests.unit.fakes import WireTransport, api_error, ok

# A recognisable secret: no result, message or printed line may hold it.
API_KEY = "k3y-FLEET-PUSH-DO-NOT-LEAK-7e41b0"
SUMMARY_KEYS = ["total", "sent", "failed", "skipped"]
ROW_KEYS = ["iccid", "status", "status_code", "msg"]


def iccid(index: int) -> str:
    return f"89882806660000{index:05d}"


def fleet(count: int) -> list:
    return [{"iccid": iccid(index)} for index in range(count)]


class FakeDownlink:
    """Stands in for monoz_downlink's action plugin: records each batch, answers from ``answer``.

    ``answer(batch_number, downlinks, check_mode)`` returns the module's result;
    by default every device is sent (or would be, in check mode).  ``during``
    runs at the start of each call, to look at the report between batches.
    """

    def __init__(self, answer=None, during=None):
        self.calls = []
        self.answer = answer or self.all_sent
        self.during = during

    @staticmethod
    def all_sent(batch, downlinks, check_mode):
        status, code = ("would_send", None) if check_mode else ("sent", 200)
        return {"changed": True, "results": [
            {"iccid": item["iccid"], "status": status, "status_code": code, "attempts": 1, "msg": None}
            for item in downlinks]}

    def __call__(self, action, downlinks, downlink_args, task_vars):
        self.calls.append({"downlinks": downlinks, "args": downlink_args, "check_mode": action._task.check_mode})
        if self.during:
            self.during(len(self.calls))
        return self.answer(len(self.calls), downlinks, bool(action._task.check_mode))


def statuses(*per_device):
    """An answer giving the devices of each batch the statuses listed (``(status, status_code, msg)``)."""
    answers = iter(per_device)

    def answer(batch, downlinks, check_mode):
        given = next(answers)
        if isinstance(given, dict):
            return given
        return {"changed": True, "failed": any(row[0] == "failed" for row in given), "results": [
            {"iccid": item["iccid"], "status": status, "status_code": code, "msg": msg}
            for item, (status, code, msg) in zip(downlinks, given)]}

    return answer


SENT = ("sent", 200, None)


def failed(code: int, index: int) -> tuple:
    return ("failed", code, f"HTTP {code} for ICCID {iccid(index)}: refused")


class Lines:
    """Records what the action prints."""

    def __init__(self):
        self.lines = []

    def display(self, msg, *args, **kwargs):
        self.lines.append(msg)


@pytest.fixture
def spool_dir(tmp_path, monkeypatch):
    """ansible-playbook's temporary directory, where the spool file lives: empty before and after a push."""
    directory = tmp_path / "ansible-local"
    directory.mkdir()
    monkeypatch.setattr(C, "DEFAULT_LOCAL_TMP", str(directory))
    return directory


@pytest.fixture
def push(monkeypatch, spool_dir):
    """``push(args, send=None, task_vars=None, check_mode=False)``: one run of the action as the role makes it."""
    printed = Lines()
    monkeypatch.setattr(fleet_push_run, "display", printed)

    def run(args: dict, send: FakeDownlink | None = None, task_vars: dict | None = None, check_mode: bool = False):
        send = send or FakeDownlink()

        def fake_send(action, downlinks, downlink_args, task_vars):
            return send(action, downlinks, downlink_args, task_vars)

        monkeypatch.setattr(ActionModule, "_send", fake_send)
        play_context = PlayContext()
        connection = connection_loader.get("local", play_context, None)
        task = Task()
        task.args = dict(args)
        task.check_mode = check_mode
        loader = DataLoader()
        action = ActionModule(task, connection, play_context, loader, Templar(loader=loader), None)
        variables = {"inventory_hostname": "localhost", "playbook_dir": "/nonexistent"}
        variables.update(task_vars or {})
        run.send, run.task, run.lines = send, task, printed.lines
        return action.run(task_vars=variables)

    return run


def read_json(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


# -- the role's input ---------------------------------------------------------------

def collection_root() -> Path:
    """The collection root: four levels above this file, or the current directory under ansible-test."""
    root = Path(__file__).resolve().parents[4]
    return root if (root / "galaxy.yml").exists() or (root / "MANIFEST.json").exists() else Path.cwd()


def test_role_variables_are_exactly_the_role_argument_spec_options():
    spec = yaml.safe_load((collection_root() / "roles" / "fleet_push" / "meta" / "argument_specs.yml").read_text())
    assert ROLE_VARIABLES == frozenset(spec["argument_specs"]["main"]["options"])


@pytest.mark.parametrize("args, task_vars, message", [
    ({"payload": ["x"]}, {},
     "no device source: set one of fleet_push_devices, fleet_push_devices_csv and fleet_push_inventory_group"),
    ({"payload": ["x"], "devices_csv": "", "inventory_group": ""}, {},
     "no device source: set one of fleet_push_devices, fleet_push_devices_csv and fleet_push_inventory_group"),
    ({"payload": ["x"]}, {"fleet_push_device": [], "fleet_push_csv": "d.csv", "fleet_push_payload": "x"},
     "no device source: set one of fleet_push_devices, fleet_push_devices_csv and fleet_push_inventory_group;"
     " unknown variable(s) fleet_push_csv, fleet_push_device: misspelt?"),
    ({"payload": ["x"], "devices": [], "devices_csv": "d.csv"}, {},
     "give exactly one device source, not fleet_push_devices and fleet_push_devices_csv"),
    ({"payload": ["x"], "devices_csv": "d.csv", "inventory_group": "fleet"}, {},
     "give exactly one device source, not fleet_push_devices_csv and fleet_push_inventory_group"),
    ({"devices": fleet(1), "payload": ["x"], "template": "t.j2"}, {},
     "set exactly one of fleet_push_payload (the same message for every device) and fleet_push_template"
     " (rendered per device)"),
    ({"devices": fleet(1)}, {},
     "set exactly one of fleet_push_payload (the same message for every device) and fleet_push_template"
     " (rendered per device)"),
    ({"devices": fleet(1), "payload": ["a", "b"]}, {}, "payload must be a list holding the one payload"),
    ({"devices": fleet(1), "payload": ["x"], "shard_count": 0}, {},
     "need fleet_push_shard_count >= 1 and 0 <= fleet_push_shard_index < fleet_push_shard_count"
     " (got index 0, count 0)"),
    ({"devices": fleet(1), "payload": ["x"], "shard_index": 3, "shard_count": 3}, {},
     "need fleet_push_shard_count >= 1 and 0 <= fleet_push_shard_index < fleet_push_shard_count"
     " (got index 3, count 3)"),
    ({"devices": fleet(1), "payload": ["x"], "shard_index": -1, "shard_count": 2}, {},
     "(got index -1, count 2)"),
    ({"devices": fleet(1), "payload": ["x"], "batch_size": 0}, {}, "need fleet_push_batch_size >= 1 (got 0)"),
    ({"devices": fleet(1), "payload": ["x"], "max_failures": -1}, {},
     "need fleet_push_max_failures unset or >= 0 (got -1)"),
    ({"inventory_group": "nope", "payload": ["x"]}, {"groups": {"all": [], "fleet": []}},
     "inventory group nope (fleet_push_inventory_group) not found"),
    ({"devices": fleet(1), "payload": ["x"], "batch_size": "many"}, {}, "batch_size"),
])
def test_bad_input_fails_naming_the_problem_before_anything_is_sent(push, spool_dir, args, task_vars, message):
    with pytest.raises(AnsibleActionFail) as caught:
        push(args, task_vars=task_vars)
    assert str(caught.value.message).startswith("fleet_push: ")
    assert message in str(caught.value.message)
    assert push.send.calls == []
    assert list(spool_dir.iterdir()) == []


def test_a_misspelt_variable_is_not_named_when_a_source_is_given(push):
    result = push({"devices": fleet(1), "payload": ["x"]}, task_vars={"fleet_push_devics": []})
    assert result.get("failed") is not True, result


def test_an_empty_list_is_an_empty_successful_push(push, tmp_path):
    report = tmp_path / "report.json"
    result = push({"devices": [], "payload": ["x"], "report": str(report)})
    assert result.get("failed") is not True, result
    assert result["changed"] is False
    assert result["summary"] == {"total": 0, "sent": 0, "failed": 0, "skipped": 0, "would_send": 0}
    assert result["msg"] == f"fleet_push: 0 device(s): 0 sent, 0 failed, 0 skipped; report {report}"
    # No progress line, only the summary.
    assert push.send.calls == [] and push.lines == [f"[localhost] {result['msg']}"]
    assert read_json(report) == {"summary": {"total": 0, "sent": 0, "failed": 0, "skipped": 0}, "devices": []}


def test_an_empty_inventory_group_is_an_empty_push(push):
    result = push({"inventory_group": "fleet", "payload": ["x"]}, task_vars={"groups": {"fleet": []}, "hostvars": {}})
    assert result.get("failed") is not True, result
    assert result["summary"]["total"] == 0 and push.send.calls == []


# -- batches -----------------------------------------------------------------------

def test_devices_go_out_in_batches_of_batch_size_in_order(push):
    result = push({"devices": fleet(2500), "payload": ["reboot"], "batch_size": 1000,
                   "org_id": "ORG", "api_key": API_KEY, "retries": 2})
    assert result.get("failed") is not True, result
    assert [len(call["downlinks"]) for call in push.send.calls] == [1000, 1000, 500]
    sent = [item for call in push.send.calls for item in call["downlinks"]]
    assert sent == [{"iccid": iccid(index), "payload": "reboot"} for index in range(2500)]
    # monoz_downlink gets the options that were set, and none of the role's own.
    assert all(call["args"] == {"org_id": "ORG", "api_key": API_KEY, "retries": 2} for call in push.send.calls)
    assert result["changed"] is True
    assert result["summary"] == {"total": 2500, "sent": 2500, "failed": 0, "skipped": 0, "would_send": 0}
    assert result["msg"] == "fleet_push: 2,500 device(s): 2,500 sent, 0 failed, 0 skipped"


def test_iccid_strings_and_numbers_are_devices_too(push):
    push({"devices": [iccid(0), int(iccid(1)), {"iccid": iccid(2), "apn": "a"}], "payload": ["x"]})
    assert push.send.calls[0]["downlinks"] == [
        {"iccid": iccid(0), "payload": "x"}, {"iccid": iccid(1), "payload": "x"}, {"iccid": iccid(2), "payload": "x"},
    ]


def test_a_json_text_payload_is_sent_as_written_with_format_json_and_device_overrides_pass(push):
    devices = [{"iccid": iccid(0)}, {"iccid": iccid(1), "topic": "/cfg", "qos": 1, "retain": True, "format": "text"}]
    push({"devices": devices, "payload": ['{"a": 1e3, "a": 2}']})
    assert push.send.calls[0]["downlinks"] == [
        {"iccid": iccid(0), "payload": '{"a": 1e3, "a": 2}', "format": "json"},
        {"iccid": iccid(1), "payload": '{"a": 1e3, "a": 2}', "topic": "/cfg", "qos": 1, "retain": True,
         "format": "text"},
    ]


def test_a_template_is_rendered_per_device_from_the_templates_directory(push, tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "apn.j2").write_text('{"apn": "{{ device.apn }}", "ttl": {{ ttl }}}\n')
    push({"devices": [{"iccid": iccid(0), "apn": "a"}, {"iccid": iccid(1), "apn": "b"}], "template": "apn.j2"},
         task_vars={"ansible_search_path": [str(tmp_path)], "ttl": 60})
    assert push.send.calls[0]["downlinks"] == [
        {"iccid": iccid(0), "payload": '{"apn": "a", "ttl": 60}', "format": "json"},
        {"iccid": iccid(1), "payload": '{"apn": "b", "ttl": 60}', "format": "json"},
    ]


def test_a_missing_template_fails_naming_it(push, tmp_path):
    with pytest.raises(AnsibleActionFail, match="fleet_push: fleet_push_template 'nope.j2' not found"):
        push({"devices": fleet(1), "template": "nope.j2"}, task_vars={"ansible_search_path": [str(tmp_path)]})
    assert push.send.calls == []


@pytest.mark.parametrize("index, count, expected", [
    (0, 1, list(range(10))), (0, 3, [0, 3, 6, 9]), (1, 3, [1, 4, 7]), (2, 3, [2, 5, 8]), (9, 10, [9]),
])
def test_a_shard_pushes_the_devices_whose_position_modulo_the_count_is_its_index(push, index, count, expected):
    result = push({"devices": fleet(10), "payload": ["x"], "batch_size": 2,
                   "shard_index": index, "shard_count": count})
    assert [item["iccid"] for call in push.send.calls for item in call["downlinks"]] == [iccid(i) for i in expected]
    assert all(len(call["downlinks"]) <= 2 for call in push.send.calls)
    assert result["summary"]["total"] == len(expected)
    where = f" in shard index {index} of {count} shards" if count > 1 else ""
    assert result["msg"] == (f"fleet_push: {len(expected)} device(s){where}: {len(expected)} sent, 0 failed,"
                             f" 0 skipped")


def test_the_inventory_group_source_pushes_its_hosts_with_their_variables(push, tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.j2").write_text("apn={{ device.apn }} host={{ device.inventory_hostname }}")
    hostvars = {"dev1": {"monoz_iccid": iccid(1), "apn": "a"}, "dev2": {"monoz_iccid": int(iccid(2)), "apn": "b"},
                "other": {"monoz_iccid": iccid(3), "apn": "c"}}
    result = push({"inventory_group": "fleet", "template": "t.j2"},
                  task_vars={"groups": {"all": list(hostvars), "fleet": ["dev1", "dev2"]}, "hostvars": hostvars,
                             "ansible_search_path": [str(tmp_path)]})
    assert result.get("failed") is not True, result
    assert push.send.calls[0]["downlinks"] == [
        {"iccid": iccid(1), "payload": "apn=a host=dev1"}, {"iccid": iccid(2), "payload": "apn=b host=dev2"},
    ]


def test_a_host_without_an_iccid_fails_naming_it_before_anything_is_sent(push):
    hostvars = {"dev1": {"monoz_iccid": iccid(1)}, "dev2": {"apn": "b"}}
    with pytest.raises(AnsibleActionFail, match="fleet_push: host 'dev2' has no monoz_iccid variable"):
        push({"inventory_group": "fleet", "payload": ["x"]},
             task_vars={"groups": {"fleet": ["dev1", "dev2"]}, "hostvars": hostvars})
    assert push.send.calls == []


# -- nothing is sent unless every device is valid ---------------------------------------

def test_a_bad_iccid_at_the_end_of_the_fleet_fails_before_any_batch_naming_the_device(push, spool_dir):
    devices = fleet(2500)
    devices[-1] = {"iccid": "89882806660000O2499"}
    with pytest.raises(AnsibleActionFail) as caught:
        push({"devices": devices, "payload": ["x"], "batch_size": 1000})
    assert caught.value.message == ("fleet_push: fleet_push_devices[2499]: iccid must contain digits only,"
                                    " got '89882806660000O2499'")
    assert push.send.calls == []
    assert list(spool_dir.iterdir()) == []


def test_a_bad_topic_on_the_last_device_fails_before_any_batch_naming_the_device(push, spool_dir):
    devices = fleet(2500)
    devices[-1]["topic"] = "config"
    with pytest.raises(AnsibleActionFail) as caught:
        push({"devices": devices, "payload": ["x"], "batch_size": 1000})
    assert caught.value.message == (f"fleet_push: devices[2499] (ICCID {iccid(2499)}): topic must be empty or start"
                                    f" with '/', got 'config'")
    assert push.send.calls == []
    assert list(spool_dir.iterdir()) == []


def test_a_device_without_an_iccid_key_fails_naming_it(push):
    with pytest.raises(AnsibleActionFail, match=r"fleet_push: fleet_push_devices\[1\] has no iccid key: \['apn'\]"):
        push({"devices": [{"iccid": iccid(0)}, {"apn": "x"}], "payload": ["x"]})
    assert push.send.calls == []


def test_a_template_that_fails_for_one_device_names_it_before_anything_is_sent(push, tmp_path):
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.j2").write_text("{{ device.apn | upper }}")
    devices = [{"iccid": iccid(index), "apn": "a"} for index in range(5)]
    del devices[3]["apn"]
    with pytest.raises(AnsibleActionFail, match=rf"fleet_push: devices\[3\] \(ICCID {iccid(3)}\): rendering t.j2"
                                                r" failed"):
        push({"devices": devices, "template": "t.j2", "batch_size": 2},
             task_vars={"ansible_search_path": [str(tmp_path)]})
    assert push.send.calls == []


def test_in_a_shard_a_bad_device_is_named_by_its_position_in_the_fleet(push):
    devices = fleet(10)
    devices[7]["topic"] = "config"
    with pytest.raises(AnsibleActionFail) as caught:
        push({"devices": devices, "payload": ["x"], "shard_index": 1, "shard_count": 3})
    assert "[7]" in caught.value.message, caught.value.message


def test_devices_that_are_not_a_list_fail_naming_the_variable(push):
    # Not split on commas the way an argument spec would, and never one character per device.
    with pytest.raises(AnsibleActionFail) as caught:
        push({"devices": f"{iccid(0)},{iccid(1)}", "payload": ["x"]})
    assert caught.value.message == "fleet_push: fleet_push_devices must be a list of ICCIDs or device dicts, got str"
    assert push.send.calls == []


# -- the CSV source ----------------------------------------------------------------------

def write_csv(tmp_path, text: str, name: str = "devices.csv") -> str:
    (tmp_path / "files").mkdir(exist_ok=True)
    (tmp_path / "files" / name).write_text(text, encoding="utf-8")
    return name


def test_a_csv_source_is_read_from_the_files_directory_into_batches(push, tmp_path):
    rows = [f"{iccid(index)},apn{index}\n" for index in range(5)]
    # A byte order mark, a blank line and a line of empty cells are not devices.
    name = write_csv(tmp_path, "\ufefficcid,apn\n" + "".join(rows[:2]) + "\n , \n" + "".join(rows[2:]))
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "t.j2").write_text("{{ device.apn }}")
    result = push({"devices_csv": name, "template": "t.j2", "batch_size": 2},
                  task_vars={"ansible_search_path": [str(tmp_path)]})
    assert result.get("failed") is not True, result
    assert [call["downlinks"] for call in push.send.calls] == [
        [{"iccid": iccid(0), "payload": "apn0"}, {"iccid": iccid(1), "payload": "apn1"}],
        [{"iccid": iccid(2), "payload": "apn2"}, {"iccid": iccid(3), "payload": "apn3"}],
        [{"iccid": iccid(4), "payload": "apn4"}],
    ]


def test_a_bad_csv_row_fails_naming_its_line_before_any_batch(push, tmp_path, spool_dir):
    rows = [f"{iccid(index)},a" for index in range(3000)]
    rows[2500] = "89882806660000x2500,a"
    name = write_csv(tmp_path, "iccid,apn\n" + "\n".join(rows) + "\n")
    with pytest.raises(AnsibleActionFail) as caught:
        push({"devices_csv": name, "payload": ["x"], "batch_size": 100},
             task_vars={"ansible_search_path": [str(tmp_path)]})
    path = tmp_path / "files" / name
    assert caught.value.message == (f"fleet_push: {path} line 2502: iccid must contain digits only,"
                                    f" got '89882806660000x2500'")
    assert push.send.calls == []
    assert list(spool_dir.iterdir()) == []


def test_a_missing_csv_file_fails_naming_it(push, tmp_path):
    with pytest.raises(AnsibleActionFail, match="fleet_push: fleet_push_devices_csv 'nope.csv' not found"):
        push({"devices_csv": "nope.csv", "payload": ["x"]}, task_vars={"ansible_search_path": [str(tmp_path)]})


def test_a_header_only_csv_is_an_empty_push(push, tmp_path):
    result = push({"devices_csv": write_csv(tmp_path, "iccid,apn\n"), "payload": ["x"]},
                  task_vars={"ansible_search_path": [str(tmp_path)]})
    assert result.get("failed") is not True and result["summary"]["total"] == 0
    assert push.send.calls == []


def test_the_csv_is_streamed_not_read_whole_before_the_first_batch(push, tmp_path, monkeypatch):
    """The action pulls rows from the CSV reader a batch at a time while spooling."""
    name = write_csv(tmp_path, "iccid\n" + "".join(f"{iccid(index)}\n" for index in range(10)))
    pulled = []
    real = fleet_push_run.iter_csv_devices

    def counting(path):
        for device in real(path):
            pulled.append(device["iccid"])
            yield device

    spooled = []
    real_build = fleet_push_run.build_downlinks

    def build(templar, settings, devices, variables, positions=None):
        spooled.append((positions[0], len(pulled)))
        return real_build(templar, settings, devices, variables, positions)

    monkeypatch.setattr(fleet_push_run, "iter_csv_devices", counting)
    monkeypatch.setattr(fleet_push_run, "build_downlinks", build)
    push({"devices_csv": name, "payload": ["x"], "batch_size": 4}, task_vars={"ansible_search_path": [str(tmp_path)]})
    # Each batch was rendered when only its own rows had been read.
    assert spooled == [(0, 4), (4, 8), (8, 10)]


# -- stopping early ----------------------------------------------------------------------

def test_a_401_stops_the_push_and_later_batches_are_reported_not_attempted(push, tmp_path):
    report = tmp_path / "r.json"
    send = FakeDownlink(statuses([failed(401, 0), failed(401, 1)]))
    result = push({"devices": fleet(6), "payload": ["x"], "batch_size": 2, "report": str(report)}, send=send)

    assert len(send.calls) == 1
    assert push.lines == [f"[localhost] batch 1/3: 0 sent, 2 failed, 0 skipped; no further batch starts: {STOP_401}"]
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["summary"] == {"total": 6, "sent": 0, "failed": 6, "skipped": 0, "would_send": 0}
    assert result["msg"] == (
        f"fleet_push: 6 of 6 device(s) failed; stopped early because {STOP_401}; first failure:"
        f" ICCID {iccid(0)}: HTTP 401 for ICCID {iccid(0)}: refused; see the report {report}"
    )
    rows = read_json(report)["devices"]
    assert [row["iccid"] for row in rows] == [iccid(index) for index in range(6)]
    assert rows[2:] == [{"iccid": iccid(index), "status": "failed", "status_code": None,
                         "msg": f"not attempted: the push stopped because {STOP_401}"} for index in range(2, 6)]


@pytest.mark.parametrize("max_failures, calls", [(None, 3), (3, 3), (2, 2), (0, 1)])
def test_max_failures_stops_the_push_once_more_devices_than_it_failed(push, max_failures, calls):
    send = FakeDownlink(statuses([failed(500, 0), SENT], [failed(500, 2), failed(404, 3)], [SENT, SENT]))
    args = {"devices": fleet(6), "payload": ["x"], "batch_size": 2}
    if max_failures is not None:
        args["max_failures"] = max_failures
    result = push(args, send=send)
    assert len(send.calls) == calls
    assert result["failed"] is True
    stop = f"more than fleet_push_max_failures ({max_failures}) devices failed"
    if calls == 3:
        assert "stopped early" not in result["msg"]
        assert result["summary"]["sent"] == 3 and result["summary"]["failed"] == 3
    else:
        assert f"stopped early because {stop}" in result["msg"]
        assert push.lines[-1].endswith(f"; no further batch starts: {stop}")
        # The not-attempted devices count as failed.
        assert result["summary"]["sent"] == 1 and result["summary"]["failed"] == 5
    assert len(push.lines) == calls


def test_a_batch_that_failed_as_a_whole_stops_the_push(push, tmp_path):
    report = tmp_path / "r.json"
    whole = {"failed": True, "msg": "missing required arguments: org_id"}
    send = FakeDownlink(statuses(whole))
    result = push({"devices": fleet(5), "payload": ["x"], "batch_size": 2, "report": str(report)}, send=send)

    assert len(send.calls) == 1
    stop = "batch 1/3 failed as a whole: missing required arguments: org_id"
    assert push.lines == [f"[localhost] batch 1/3: 0 sent, 2 failed, 0 skipped; no further batch starts: {stop}"]
    assert result["failed"] is True
    assert result["msg"] == (f"fleet_push: 5 of 5 device(s) failed; stopped early because {stop}; first failure:"
                             f" ICCID {iccid(0)}: missing required arguments: org_id; see the report {report}")
    rows = read_json(report)["devices"]
    assert rows[0] == {"iccid": iccid(0), "status": "failed", "status_code": None,
                       "msg": "missing required arguments: org_id"}
    assert rows[4]["msg"] == f"not attempted: the push stopped because {stop}"


def test_some_failed_devices_fail_the_task_naming_the_first_after_every_batch_ran(push):
    send = FakeDownlink(statuses([SENT, failed(404, 1)], [failed(500, 2), ("skipped", None, "journal")]))
    result = push({"devices": fleet(4), "payload": ["x"], "batch_size": 2}, send=send)
    assert len(send.calls) == 2
    assert result["failed"] is True
    assert result["changed"] is True
    assert result["summary"] == {"total": 4, "sent": 1, "failed": 2, "skipped": 1, "would_send": 0}
    assert result["msg"] == f"fleet_push: 2 of 4 device(s) failed; first failure: ICCID {iccid(1)}: HTTP 404 for" \
                            f" ICCID {iccid(1)}: refused"


# -- what it prints and returns ------------------------------------------------------------

def test_a_progress_line_per_batch_with_cumulative_counts(push):
    send = FakeDownlink(statuses([SENT] * 1000, [SENT] * 990 + [failed(404, 1990)] * 10, [("skipped", None, "")] * 5))
    push({"devices": fleet(2005), "payload": ["x"], "batch_size": 1000},
         send=send, task_vars={"inventory_hostname": "shard-a"})
    assert push.lines == [
        "[shard-a] batch 1/3: 1,000 sent, 0 failed, 0 skipped",
        "[shard-a] batch 2/3: 1,990 sent, 10 failed, 0 skipped",
        "[shard-a] batch 3/3: 1,990 sent, 10 failed, 5 skipped",
    ]


def test_all_skipped_is_success_without_change(push):
    send = FakeDownlink(statuses([("skipped", None, "already sent")] * 3))
    result = push({"devices": fleet(3), "payload": ["x"]}, send=send)
    assert result.get("failed") is not True and result["changed"] is False
    assert result["msg"] == "fleet_push: 3 device(s): 0 sent, 0 failed, 3 skipped"


def test_the_devices_argument_is_replaced_by_a_count(push):
    result = push({"devices": fleet(1234), "payload": ["x"]})
    assert push.task.args["devices"] == "(1234 items)"
    assert iccid(5) not in json.dumps(result)


def test_the_result_shows_the_summary_not_the_arguments_at_verbose(push):
    assert push({"devices": fleet(1), "payload": ["x"]})["_ansible_verbose_override"] is True


def test_check_mode_counts_would_send_writes_no_report_and_changed_follows_would_send(push, tmp_path):
    report = tmp_path / "r.json"
    result = push({"devices": fleet(3), "payload": ["x"], "batch_size": 2, "report": str(report)}, check_mode=True)
    assert [call["check_mode"] for call in push.send.calls] == [True, True]
    assert result.get("failed") is not True
    assert result["changed"] is True
    assert result["summary"] == {"total": 3, "sent": 0, "failed": 0, "skipped": 0, "would_send": 3}
    assert result["msg"] == "fleet_push: 3 device(s): 0 sent, 0 failed, 0 skipped, 3 would send"
    assert push.lines[-2:] == ["[localhost] batch 2/2: 0 sent, 0 failed, 0 skipped, 3 would send",
                               f"[localhost] {result['msg']}"]
    assert not report.exists()


def test_check_mode_with_nothing_that_would_send_is_unchanged(push):
    send = FakeDownlink(statuses([("skipped", None, "journal")]))
    result = push({"devices": fleet(1), "payload": ["x"]}, send=send, check_mode=True)
    assert result["changed"] is False


# -- the report ------------------------------------------------------------------------------

def test_the_report_is_valid_json_in_the_design_format_after_every_batch(push, tmp_path):
    report = tmp_path / "r.json"
    report.write_text("an older push's report")
    seen = []

    def look(batch):
        # Before batch N is sent, the report holds exactly batches 1 .. N-1.
        seen.append(read_json(report))

    answer = statuses([SENT, SENT], [failed(404, 2), ("skipped", None, "journal")], [SENT])
    result = push({"devices": fleet(5), "payload": ["x"], "batch_size": 2, "report": str(report)},
                  send=FakeDownlink(answer, during=look))
    assert result["msg"].endswith(f"; see the report {report}")

    final = read_json(report)
    assert seen == [
        {"summary": {"total": 5, "sent": 0, "failed": 0, "skipped": 0}, "devices": []},
        {"summary": {"total": 5, "sent": 2, "failed": 0, "skipped": 0}, "devices": final["devices"][:2]},
        {"summary": {"total": 5, "sent": 2, "failed": 1, "skipped": 1}, "devices": final["devices"][:4]},
    ]
    assert list(final) == ["summary", "devices"]
    assert list(final["summary"]) == SUMMARY_KEYS
    assert final["summary"] == {"total": 5, "sent": 3, "failed": 1, "skipped": 1}
    assert all(list(row) == ROW_KEYS for row in final["devices"])
    assert final["devices"] == [
        {"iccid": iccid(0), "status": "sent", "status_code": 200, "msg": None},
        {"iccid": iccid(1), "status": "sent", "status_code": 200, "msg": None},
        {"iccid": iccid(2), "status": "failed", "status_code": 404, "msg": f"HTTP 404 for ICCID {iccid(2)}: refused"},
        {"iccid": iccid(3), "status": "skipped", "status_code": None, "msg": "journal"},
        {"iccid": iccid(4), "status": "sent", "status_code": 200, "msg": None},
    ]


def test_a_relative_report_path_is_under_the_playbook_directory(push, tmp_path):
    (tmp_path / "out").mkdir()
    result = push({"devices": fleet(2), "payload": ["x"], "report": "out/r.json"},
                  task_vars={"playbook_dir": str(tmp_path)})
    report = tmp_path / "out" / "r.json"
    assert result["msg"] == f"fleet_push: 2 device(s): 2 sent, 0 failed, 0 skipped; report {report}"
    assert read_json(report)["summary"]["sent"] == 2


def test_an_unwritable_report_fails_before_anything_is_sent(push, tmp_path, spool_dir):
    path = tmp_path / "missing-dir" / "r.json"
    with pytest.raises(AnsibleActionFail, match=f"fleet_push: cannot write the report {path}"):
        push({"devices": fleet(3), "payload": ["x"], "report": str(path)})
    assert push.send.calls == []
    assert list(spool_dir.iterdir()) == []


# -- the spool file ------------------------------------------------------------------------

def test_the_spool_holds_the_rendered_fleet_during_the_push_and_goes_after_success(push, spool_dir):
    during = []
    send = FakeDownlink(during=lambda batch: during.append(sorted(path.name for path in spool_dir.iterdir())))
    push({"devices": fleet(3), "payload": ["x"], "batch_size": 2}, send=send)
    assert len(during) == 2 and all(len(names) == 1 and names[0].startswith("fleet_push-") for names in during)
    assert list(spool_dir.iterdir()) == []


def test_the_spool_goes_after_a_failed_push_and_after_an_error_in_a_batch(push, spool_dir):
    push({"devices": fleet(4), "payload": ["x"], "batch_size": 2},
         send=FakeDownlink(statuses([failed(401, 0), failed(401, 1)])))
    assert list(spool_dir.iterdir()) == []

    def explode(batch):
        raise RuntimeError("the worker was interrupted")

    with pytest.raises(RuntimeError):
        push({"devices": fleet(4), "payload": ["x"], "batch_size": 2}, send=FakeDownlink(during=explode))
    assert list(spool_dir.iterdir()) == []


def test_a_dict_payload_survives_the_spool(push):
    payload = {"text": "a\nb\u2028c", "n": 1.5, "list": [1, None]}
    push({"devices": fleet(1), "payload": [payload]})
    assert push.send.calls[0]["downlinks"] == [{"iccid": iccid(0), "payload": payload}]


def test_a_text_payload_with_line_separators_survives_the_spool(push):
    text = "line\u2028separator \u0085 é\r\nend"
    push({"devices": fleet(2), "payload": [text]})
    assert [item["payload"] for item in push.send.calls[0]["downlinks"]] == [text, text]


def test_the_spool_file_is_private_to_the_user(push, spool_dir):
    modes = []
    send = FakeDownlink(during=lambda batch: modes.extend(
        stat.S_IMODE(path.stat().st_mode) for path in spool_dir.iterdir()))
    push({"devices": fleet(1), "payload": ["x"]}, send=send)
    assert modes == [0o600]


def test_the_spool_goes_when_rendering_is_interrupted(push, spool_dir, monkeypatch):
    real_build = fleet_push_run.build_downlinks
    built = []

    def build(*args):
        if built:
            raise KeyboardInterrupt
        built.append(1)
        return real_build(*args)

    monkeypatch.setattr(fleet_push_run, "build_downlinks", build)
    with pytest.raises(KeyboardInterrupt):
        push({"devices": fleet(3), "payload": ["x"], "batch_size": 2})
    assert built and push.send.calls == []
    assert list(spool_dir.iterdir()) == []


# -- _send: one batch through monoz_downlink's own action plugin ---------------------------------
# The real _send and the real monoz_downlink action plugin (its controller
# path); requests prepares every request, and WireTransport answers it.

@pytest.fixture
def real_push(monkeypatch, spool_dir):
    """``real_push(args, check_mode=False)``: the action with the real ``_send``; records the tasks it makes."""
    printed = Lines()
    monkeypatch.setattr(fleet_push_run, "display", printed)
    loaded = []
    real_get = plugin_loader.action_loader.get

    def get(name, *args, **kwargs):
        loaded.append({"name": name, **kwargs})
        return real_get(name, *args, **kwargs)

    monkeypatch.setattr(plugin_loader.action_loader, "get", get)

    def run(args: dict, check_mode: bool = False):
        play_context = PlayContext()
        connection = connection_loader.get("local", play_context, None)
        task = Task()
        task.action = "monoz.link.fleet_push_run"
        task.args = dict(args)
        task.check_mode = check_mode
        loader = DataLoader()
        action = ActionModule(task, connection, play_context, loader, Templar(loader=loader), plugin_loader)
        run.task, run.lines, run.loaded, run.connection = task, printed.lines, loaded, connection
        return action.run(task_vars={"inventory_hostname": "localhost", "playbook_dir": "/nonexistent"})

    return run


def test_send_runs_monoz_downlink_as_a_task_of_that_module_would(real_push):
    with WireTransport() as wire:  # check mode: any request fails the test
        result = real_push({"devices": fleet(3), "payload": ["x"], "batch_size": 2, "org_id": "ORG",
                            "api_key": API_KEY}, check_mode=True)
    assert wire.requests == []
    assert result.get("failed") is not True, result
    assert result["summary"] == {"total": 3, "sent": 0, "failed": 0, "skipped": 0, "would_send": 3}
    assert [item["name"] for item in real_push.loaded] == ["monoz.link.monoz_downlink"] * 2
    tasks = [item["task"] for item in real_push.loaded]
    assert [[device["iccid"] for device in task.args["devices"]] for task in tasks] == [
        [iccid(0), iccid(1)], [iccid(2)]]
    assert all(task.args["org_id"] == "ORG" and task.args["api_key"] == API_KEY for task in tasks)
    # module_defaults for group/monoz.link.monoz are matched by the resolved action.
    assert all(task.action == task.resolved_action == "monoz.link.monoz_downlink" for task in tasks)
    assert all(task.check_mode is True and task is not real_push.task for task in tasks)
    assert all(item["connection"] is real_push.connection for item in real_push.loaded)
    assert real_push.task.action == "monoz.link.fleet_push_run"


def test_a_real_401_stops_the_push_and_the_key_appears_nowhere(real_push, tmp_path):
    report = tmp_path / "r.json"

    def answer(request):
        body = json.loads(request.body)
        if body["ICCID"] == iccid(1):
            return api_error(401, f"Unauthorized: {API_KEY}")
        return ok()

    with WireTransport(handler=answer) as wire:
        result = real_push({"devices": fleet(6), "payload": ["x"], "batch_size": 2, "org_id": "ORG",
                            "api_key": API_KEY, "retries": 0, "report": str(report)})
    # Only the first batch went out, with the key.
    assert sorted(json.loads(request.body)["ICCID"] for request in wire.requests) == [iccid(0), iccid(1)]
    assert all(API_KEY in json.dumps(request.headers) for request in wire.requests)
    assert result["failed"] is True
    assert result["summary"] == {"total": 6, "sent": 1, "failed": 5, "skipped": 0, "would_send": 0}
    assert f"stopped early because {STOP_401}" in result["msg"]
    assert f"first failure: ICCID {iccid(1)}" in result["msg"]
    assert len(real_push.lines) == 1
    assert API_KEY not in json.dumps(result)
    assert not any(API_KEY in line for line in real_push.lines)
    assert API_KEY not in report.read_text(encoding="utf-8")


# -- the key -----------------------------------------------------------------------------------

def leaky_push(push, tmp_path):
    """A push whose batch results carry the key: in a device's msg, then in a whole-call failure's msg."""
    leaky = f"HTTP 500 for ICCID {iccid(1)}: upstream said Authorization: {API_KEY}"
    send = FakeDownlink(statuses([SENT, ("failed", 500, leaky)], {"failed": True, "msg": f"bad key {API_KEY}"}))
    result = push({"devices": fleet(6), "payload": ["x"], "batch_size": 2, "api_key": API_KEY, "org_id": "ORG",
                   "report": str(tmp_path / "r.json")}, send=send)
    assert send.calls[0]["args"]["api_key"] == API_KEY  # it does reach monoz_downlink
    assert len(send.calls) == 2
    return result


def test_the_api_key_never_appears_in_the_result(push, tmp_path):
    result = leaky_push(push, tmp_path)
    assert result["failed"] is True
    assert "first failure: ICCID" in result["msg"] and "stopped early because batch 2/3" in result["msg"]
    assert API_KEY not in json.dumps(result)


def test_the_api_key_never_appears_in_the_printed_lines(push, tmp_path):
    leaky_push(push, tmp_path)
    assert len(push.lines) == 2
    assert not any(API_KEY in line for line in push.lines), push.lines


def test_the_api_key_never_appears_in_the_report(push, tmp_path):
    leaky_push(push, tmp_path)
    text = (tmp_path / "r.json").read_text(encoding="utf-8")
    assert len(json.loads(text)["devices"]) == 6
    assert API_KEY not in text
