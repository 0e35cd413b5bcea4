# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin fleet_report: the bookkeeping of the fleet_push role.

The role calls it to start a push, after every batch and at the end, and
registers each result (no facts).  The start writes the rendered downlinks to
a spool file in ansible-playbook's own temporary directory (removed when
ansible-playbook exits, however it exits) and hands back only the first
batch; every later call hands back the next one.  So ansible-playbook holds
one batch of the fleet, never all of it: a registered result is deep-copied
by ansible-core, and a fleet-sized one would be copied whole.

After each batch it adds the outcome to the tally, appends the batch's rows
to a JSON-lines file beside the report and rewrites the report from that
file by streaming it (temporary file + os.replace, so a reader or a crash
never sees half a report).  Every line the role prints is built here, where
the numbers are.
"""

from __future__ import annotations

import json
import os
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

COUNTED = ("sent", "failed", "skipped", "would_send")
STOP_401 = "the API refused the key (HTTP 401), so no further batch can succeed"

ARGUMENT_SPEC = {
    "downlinks": {"type": "list", "elements": "raw"},
    "batch_size": {"type": "int", "default": 1000},
    "path": {"type": "path"},
    "shard_index": {"type": "int", "default": 0},
    "shard_count": {"type": "int", "default": 1},
    "tally": {"type": "dict"},
    "batch": {"type": "int"},
    "results": {"type": "list", "elements": "dict"},
    "msg": {"type": "str"},
    "max_failures": {"type": "int"},
    "final": {"type": "bool", "default": False},
}
VALIDATOR = ArgumentSpecValidator(
    ARGUMENT_SPEC,
    mutually_exclusive=[["downlinks", "tally"], ["downlinks", "batch"]],
    required_one_of=[["downlinks", "tally"]],
)


def spool_downlinks(downlinks: list, batch_size: int, directory: str) -> tuple[str, list]:
    """Write one JSON line per downlink; return the file and the byte offset where each batch starts and ends."""
    fd, spool = tempfile.mkstemp(prefix="fleet_push-", suffix=".jsonl", dir=directory)
    offsets = [0]
    position = 0
    with os.fdopen(fd, "wb") as out:
        for index, item in enumerate(downlinks, 1):
            line = (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
            out.write(line)
            position += len(line)
            if index % batch_size == 0 or index == len(downlinks):
                offsets.append(position)
    return spool, offsets


def read_batch(tally: dict, batch: int) -> list:
    """The downlinks of batch ``batch`` (from 1), read back from the spool file."""
    if not 1 <= batch <= tally["batch_count"]:
        return []
    start, end = tally["offsets"][batch - 1], tally["offsets"][batch]
    with open(tally["spool"], "rb") as spool:
        spool.seek(start)
        # Split on the newline byte only: str.splitlines() would also split on
        # U+2028 and friends, which json.dumps leaves unescaped in a payload.
        return [json.loads(line) for line in spool.read(end - start).split(b"\n") if line]


def new_tally(total: int, batch_size: int, path: str | None, shard_index: int, shard_count: int) -> dict:
    return {
        "total": total, "batch_count": -(-total // batch_size), "path": path,
        "shard_index": shard_index, "shard_count": shard_count, "spool": None, "offsets": [0],
        "sent": 0, "failed": 0, "skipped": 0, "would_send": 0,
        "first_failure": {}, "stop": "",
    }


def count_batch(tally: dict, batch: int, results: list | None, msg: str | None, max_failures: int | None) -> list:
    """Add one batch to ``tally`` (in place) and return its report rows.

    A batch that starts after a stop reason was set is reported as not
    attempted; a batch without results failed as a whole (``msg`` says why)
    and stops the push, like a 401 or more failures than ``max_failures``.
    """
    rows = []
    if tally["stop"] or results is None:
        if tally["stop"]:
            reason = f"not attempted: the push stopped because {tally['stop']}"
        else:
            reason = msg or "the module call failed"
            tally["stop"] = f"batch {batch}/{tally['batch_count']} failed as a whole: {reason}"
        rows = [{"iccid": item["iccid"], "status": "failed", "status_code": None, "msg": reason}
                for item in read_batch(tally, batch)]
    else:
        refused = False
        for item in results:
            rows.append({"iccid": item.get("iccid"), "status": item.get("status"),
                         "status_code": item.get("status_code"), "msg": item.get("msg")})
            refused = refused or item.get("status_code") == 401
        if refused:
            tally["stop"] = STOP_401
    for row in rows:
        if row["status"] in COUNTED:
            tally[row["status"]] += 1
        if row["status"] == "failed" and not tally["first_failure"]:
            tally["first_failure"] = {"iccid": row["iccid"], "msg": row["msg"]}
    if not tally["stop"] and max_failures is not None and tally["failed"] > max_failures:
        tally["stop"] = f"more than fleet_push_max_failures ({max_failures}) devices failed"
    return rows


def _counts(tally: dict, check_mode: bool) -> str:
    text = f"{tally['sent']:,} sent, {tally['failed']:,} failed, {tally['skipped']:,} skipped"
    return text + (f", {tally['would_send']:,} would send" if check_mode else "")


def progress_line(tally: dict, batch: int, check_mode: bool) -> str:
    return f"batch {batch}/{tally['batch_count']}: {_counts(tally, check_mode)}"


def summary_line(tally: dict, check_mode: bool) -> str:
    where = ""
    if tally["shard_count"] > 1:
        where = f" in shard index {tally['shard_index']} of {tally['shard_count']} shards"
    report = f"; report {tally['path']}" if tally["path"] and not check_mode else ""
    return f"fleet_push: {tally['total']:,} device(s){where}: {_counts(tally, check_mode)}{report}"


def failure_message(tally: dict, check_mode: bool) -> str:
    stop = f"; stopped early because {tally['stop']}" if tally["stop"] else ""
    first = tally["first_failure"]
    report = f"; see the report {tally['path']}" if tally["path"] and not check_mode else ""
    return (f"fleet_push: {tally['failed']:,} of {tally['total']:,} device(s) failed{stop};"
            f" first failure: ICCID {first.get('iccid')}: {first.get('msg')}{report}")


def rows_path(path: str) -> str:
    """The JSON-lines file of the rows so far, hidden beside the report."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.rows.jsonl")


def write_report(path: str, summary: dict, rows_file: str) -> None:
    """Write ``{"summary": ..., "devices": [rows of rows_file]}`` to path, atomically."""
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write('{"summary": ' + json.dumps(summary, separators=(", ", ": ")) + ', "devices": [\n')
            first = True
            if os.path.exists(rows_file):
                with open(rows_file, encoding="utf-8") as rows:
                    for line in rows:
                        line = line.rstrip("\n")
                        if line:
                            out.write(line if first else ",\n" + line)
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


def update_report(tally: dict, rows: list, start: bool = False) -> None:
    """Append ``rows`` to the rows file (a new one at the start) and rewrite the report."""
    path = tally["path"]
    rows_file = rows_path(path)
    summary = {key: tally[key] for key in ("total", "sent", "failed", "skipped")}
    try:
        with open(rows_file, "w" if start else "a", encoding="utf-8") as out:
            out.writelines(json.dumps(row, ensure_ascii=False, separators=(", ", ": ")) + "\n" for row in rows)
        write_report(path, summary, rows_file)
    except OSError as exc:
        raise AnsibleActionFail(f"cannot write the report {path}: {to_text(exc)}") from None


def _remove(path: str | None) -> None:
    if path and os.path.exists(path):
        os.unlink(path)


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused since ansible-core 2.12
        # The fleet-sized list is checked here, not deep-copied by the validator.
        args = dict(self._task.args)
        downlinks = args.pop("downlinks", None)
        if downlinks is not None:
            args["downlinks"] = [] if isinstance(downlinks, list) else downlinks
        validation = VALIDATOR.validate(args)
        if validation.error_messages:
            raise AnsibleActionFail(f"fleet_report: {'; '.join(validation.error_messages)}")
        params = validation.validated_parameters
        check_mode = bool(self._task.check_mode)
        # Like gather_facts: -v shows that the task ran, not a batch of downlinks.
        result.update(changed=False, _ansible_verbose_override=True)

        if downlinks is not None:
            return self._start(result, downlinks, params, (task_vars or {}).get("playbook_dir"), check_mode)

        tally = dict(params["tally"])
        if params["final"]:
            _remove(tally.get("spool"))
            if tally["path"] and not check_mode:
                _remove(rows_path(tally["path"]))
            if tally["failed"]:
                result.update(failed=True, msg=failure_message(tally, check_mode))
            else:
                result["msg"] = summary_line(tally, check_mode)
            result["summary"] = {key: tally[key] for key in ("total",) + COUNTED}
            return result

        batch = params["batch"]
        if batch is None:
            raise AnsibleActionFail("fleet_report: give downlinks (start), batch or final=true")
        try:
            rows = count_batch(tally, batch, params["results"], params["msg"], params["max_failures"])
            following = [] if tally["stop"] else read_batch(tally, batch + 1)
        except (OSError, ValueError) as exc:
            raise AnsibleActionFail(f"fleet_report: cannot read the spooled downlinks: {to_text(exc)}") from None
        if tally["path"] and not check_mode:
            update_report(tally, rows)
        line = progress_line(tally, batch, check_mode)
        if tally["stop"] and not params["tally"]["stop"]:
            line += f"; no further batch starts: {tally['stop']}"
        result.update(tally=tally, msg=line, batch_devices=following)
        return result

    def _start(self, result: dict, downlinks: list, params: dict, playbook_dir: str | None, check_mode: bool) -> dict:
        if params["batch_size"] < 1:
            raise AnsibleActionFail("fleet_report: batch_size must be at least 1")
        path = params["path"]
        if path and not os.path.isabs(path):
            path = os.path.join(playbook_dir or os.getcwd(), path)
        tally = new_tally(len(downlinks), params["batch_size"], path or None,
                          params["shard_index"], params["shard_count"])
        if path and not check_mode:
            update_report(tally, [], start=True)
        # ansible-playbook removes its temporary directory when it exits,
        # so the spool goes even when the play is interrupted.
        try:
            tally["spool"], tally["offsets"] = spool_downlinks(downlinks, params["batch_size"], C.DEFAULT_LOCAL_TMP)
            first = read_batch(tally, 1)
        except (OSError, TypeError, ValueError) as exc:
            raise AnsibleActionFail(f"fleet_report: cannot spool the downlinks: {to_text(exc)}") from None
        # The task's arguments travel back to ansible-playbook with the
        # result: the fleet is not sent back at all.
        self._task.args["downlinks"] = f"({len(downlinks)} items, spooled)"
        result.update(tally=tally, batch_devices=first,
                      msg=f"fleet_push: {len(downlinks):,} device(s) in {tally['batch_count']:,} batch(es)")
        return result
