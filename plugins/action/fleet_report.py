# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin fleet_report: the per-batch bookkeeping of the fleet_push role.

Counting a batch and keeping the report used to be Jinja in set_fact plus an
``ansible.builtin.copy`` module run per batch, with every report row kept in a
fact that grew with the fleet (and was copied on every batch).  Here the rows
of each batch are appended to a JSON-lines file beside the report, the report
is rewritten from that file by streaming it (temporary file + os.replace, so
a reader or a crash never sees half a report), and only the totals travel back
as a fact: the controller's memory is bounded by one batch.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

try:
    from ansible.plugins.action import VariableLayer
except ImportError:  # ansible-core < 2.20: returned ansible_facts become host facts
    VariableLayer = None

FACT = "__fleet_push_tally"
COUNTED = ("sent", "failed", "skipped", "would_send")
STOP_401 = "the API refused the key (HTTP 401), so no further batch can succeed"

ARGUMENT_SPEC = {
    "tally": {"type": "dict"},
    "results": {"type": "list", "elements": "dict"},
    "devices": {"type": "list", "elements": "raw", "default": []},
    "msg": {"type": "str", "default": "the module call failed"},
    "batch": {"type": "int", "default": 0},
    "batch_count": {"type": "int", "default": 0},
    "total": {"type": "int", "required": True},
    "max_failures": {"type": "int"},
    "shard_index": {"type": "int", "default": 0},
    "shard_count": {"type": "int", "default": 1},
    "final": {"type": "bool", "default": False},
    "path": {"type": "path"},
}


def _new_tally() -> dict:
    return {"sent": 0, "failed": 0, "skipped": 0, "would_send": 0, "done": 0, "batches_done": 0,
            "first_failure": {}, "stop": "", "stop_batch": 0}


def _row_text(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False, separators=(", ", ": "))


def _result_row(item: Mapping) -> dict:
    return {"iccid": item.get("iccid"), "status": item.get("status"),
            "status_code": item.get("status_code"), "msg": item.get("msg")}


def _device_row(item, msg: str) -> dict:
    iccid = item.get("iccid") if isinstance(item, Mapping) else item
    return {"iccid": None if iccid is None else str(iccid), "status": "failed", "status_code": None, "msg": msg}


def rows_path(path: str) -> str:
    """The JSON-lines file of the rows so far, hidden beside the report."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.rows.jsonl")


def write_report(path: str, head: dict, rows_file: str) -> None:
    """Write head + the rows of rows_file as the report, atomically."""
    directory = os.path.dirname(path) or "."
    text = json.dumps(head, separators=(", ", ": "))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text[:-1] + ', "devices": [\n')
            first = True
            if os.path.exists(rows_file):
                with open(rows_file, encoding="utf-8") as rows:
                    for line in rows:
                        line = line.rstrip("\n")
                        if not line:
                            continue
                        if not first:
                            out.write(",\n")
                        out.write(line)
                        first = False
            out.write("\n]}\n")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused since ansible-core 2.12
        dummy, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        # The tally of an earlier push (a fact) is never carried over: batch 1,
        # or the final call of a push without batches, starts a new one.
        tally = _new_tally()
        fresh = args["batch"] == 1 or (args["final"] and not args["batch_count"])
        if args["tally"] and not fresh:
            tally.update(args["tally"])
        new_rows = []
        results = args["results"]
        if results is not None:
            counts = dict.fromkeys(COUNTED, 0)
            refused = False
            for item in results:
                status = item.get("status")
                if status in counts:
                    counts[status] += 1
                if status == "failed" and not tally["first_failure"]:
                    tally["first_failure"] = {"iccid": item.get("iccid"), "msg": item.get("msg")}
                if item.get("status_code") == 401:
                    refused = True
                new_rows.append(_result_row(item))
            for key in COUNTED:
                tally[key] = int(tally[key]) + counts[key]
        devices = args["devices"]
        if devices:
            msg = args["msg"]
            new_rows.extend(_device_row(item, msg) for item in devices)
            tally["failed"] = int(tally["failed"]) + len(devices)
            if not tally["first_failure"]:
                tally["first_failure"] = {"iccid": new_rows[-len(devices)]["iccid"], "msg": msg}

        if not args["final"]:
            batch = args["batch"]
            tally["done"] = int(tally["done"]) + len(new_rows)
            tally["batches_done"] = batch
            stop = ""
            if results is None:
                stop = f"batch {batch}/{args['batch_count']} failed as a whole: {args['msg']}"
            elif refused:
                stop = STOP_401
            elif args["max_failures"] is not None and tally["failed"] > args["max_failures"]:
                stop = f"more than fleet_push_max_failures ({args['max_failures']}) devices failed"
            tally["stop"] = stop
            tally["stop_batch"] = batch if stop else 0

        path = args["path"]
        if path and not self._task.check_mode:
            self._write(path, args, tally, new_rows, fresh)
        if VariableLayer is not None:
            # Like set_fact: a play-level fact, not one for the fact cache.
            self.register_host_variables({}, VariableLayer.CACHEABLE_FACT)
            self.register_host_variables({FACT: tally}, VariableLayer.EPHEMERAL_FACT)
        result.update(changed=False, ansible_facts={FACT: tally})
        return result

    @staticmethod
    def _write(path: str, args: dict, tally: dict, new_rows: list, fresh: bool) -> None:
        rows_file = rows_path(path)
        head = {
            "summary": {"total": args["total"], "sent": tally["sent"], "failed": tally["failed"],
                        "skipped": tally["skipped"]},
            "batches": {"done": tally["batches_done"], "total": args["batch_count"]},
            "shard": {"index": args["shard_index"], "count": args["shard_count"]},
        }
        try:
            mode = "w" if fresh else "a"
            if new_rows or mode == "w":
                with open(rows_file, mode, encoding="utf-8") as rows:
                    rows.writelines(_row_text(row) + "\n" for row in new_rows)
            write_report(path, head, rows_file)
            if args["final"] and os.path.exists(rows_file):
                os.unlink(rows_file)
        except OSError as exc:
            raise AnsibleActionFail(f"cannot write the report {path}: {to_text(exc)}") from None
