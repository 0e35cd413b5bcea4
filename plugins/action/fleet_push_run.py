# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin fleet_push_run: the whole push of the fleet_push role, in one task.

A task per batch (and a task to count it, and one to print it) costs the
role more than sending the batch does at low latency; so one task reads the
fleet, renders and checks every downlink, then calls monoz_downlink's own
action plugin once per batch, exactly as a task of that module would run
(the same module_defaults, controller path or module process), and counts,
prints and reports each batch as it ends.

Memory stays that of one batch whatever the fleet's size: the first pass
streams the devices (a CSV file row by row) into a spool file of rendered
downlinks in ansible-playbook's own temporary directory, and the second pass
reads it back one batch at a time.  Rendering and checking everything first
means that nothing is sent unless every device is valid.
"""

from __future__ import annotations

import itertools
import json
import os
import tempfile

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.monoz.link.plugins.filter.fleet_devices import device_record
from ansible_collections.monoz.link.plugins.filter.inventory_devices import inventory_devices
from ansible_collections.monoz.link.plugins.plugin_utils._compat import with_module_defaults
from ansible_collections.monoz.link.plugins.plugin_utils._controller_action import mask_no_log_values
from ansible_collections.monoz.link.plugins.plugin_utils._fleet_render import (
    FleetInputError,
    MessageSettings,
    build_downlinks,
    find_in_search_path,
)
from ansible_collections.monoz.link.plugins.plugin_utils._fleet_source import iter_csv_devices
from ansible_collections.monoz.link.plugins.plugin_utils._fleet_tally import ReportFile, Tally

display = Display()

DOWNLINK = "monoz.link.monoz_downlink"

# monoz_downlink's options that the role passes on when its variable is set;
# the others come from monoz_downlink's module_defaults and MONOZ_* fallbacks.
DOWNLINK_OPTIONS = (
    "org_id", "api_key", "api_url", "validate_certs", "timeout", "retries",
    "topic", "qos", "format", "retain", "concurrency", "rate_limit", "journal",
)

# Every variable of the role (meta/argument_specs.yml), to name a misspelt one.
ROLE_VARIABLES = frozenset("fleet_push_" + name for name in DOWNLINK_OPTIONS + (
    "devices", "devices_csv", "inventory_group", "payload", "template",
    "batch_size", "report", "shard_index", "shard_count", "max_failures",
))
SOURCES = ("fleet_push_devices", "fleet_push_devices_csv", "fleet_push_inventory_group")

ARGUMENT_SPEC = {
    "devices": {"type": "list", "elements": "raw"},
    "devices_csv": {"type": "str"},
    "inventory_group": {"type": "str"},
    "template": {"type": "str"},
    # A one-element list holding the payload: inside a list, a string that
    # looks like JSON stays a string on every ansible-core.
    "payload": {"type": "list", "elements": "raw"},
    "batch_size": {"type": "int", "default": 1000},
    "report": {"type": "path"},
    "shard_index": {"type": "int", "default": 0},
    "shard_count": {"type": "int", "default": 1},
    "max_failures": {"type": "int"},
    # Checked by monoz_downlink itself, with its own messages.
    **{name: {"type": "raw"} for name in DOWNLINK_OPTIONS},
}
VALIDATOR = ArgumentSpecValidator(ARGUMENT_SPEC)


def input_problem(params: dict, variable_names) -> str | None:
    """What is wrong with the role's input that no argument spec can say, or None.

    A list counts as a device source even when empty (an empty push); an
    empty path or group name does not.
    """
    given = [name for name, value in zip(SOURCES, (params["devices"], params["devices_csv"], params["inventory_group"]))
             if value is not None and (isinstance(value, list) or value != "")]
    if len(given) > 1:
        return f"give exactly one device source, not {' and '.join(given)}"
    if not given:
        unknown = sorted(name for name in variable_names if name.startswith("fleet_push_") and name not in ROLE_VARIABLES)
        return ("no device source: set one of fleet_push_devices, fleet_push_devices_csv and fleet_push_inventory_group"
                + (f"; unknown variable(s) {', '.join(unknown)}: misspelt?" if unknown else ""))
    if (params["payload"] is None) == (not params["template"]):
        return ("set exactly one of fleet_push_payload (the same message for every device)"
                " and fleet_push_template (rendered per device)")
    if params["payload"] is not None and len(params["payload"]) != 1:
        return "payload must be a list holding the one payload"
    if params["shard_count"] < 1 or not 0 <= params["shard_index"] < params["shard_count"]:
        return (f"need fleet_push_shard_count >= 1 and 0 <= fleet_push_shard_index < fleet_push_shard_count"
                f" (got index {params['shard_index']}, count {params['shard_count']})")
    if params["batch_size"] < 1:
        return f"need fleet_push_batch_size >= 1 (got {params['batch_size']})"
    if params["max_failures"] is not None and params["max_failures"] < 0:
        return f"need fleet_push_max_failures unset or >= 0 (got {params['max_failures']})"
    return None


def masked_outcome(outcome: dict, secrets: set) -> dict:
    """A batch's result with ``secrets`` masked in what reaches a line or the report: the messages.

    monoz_downlink masks its own no_log values in everything it returns;
    this is the second lock, on the only free text the push passes on.
    """
    if not secrets:
        return outcome

    def mask(text):
        if isinstance(text, str):
            for secret in secrets:
                text = text.replace(secret, "********")
        return text

    masked = dict(outcome, msg=mask(outcome.get("msg")))
    if isinstance(outcome.get("results"), list):
        masked["results"] = [
            dict(row, msg=mask(row["msg"])) if isinstance(row.get("msg"), str) and any(
                secret in row["msg"] for secret in secrets) else row
            for row in outcome["results"]
        ]
    return masked


class _Spool:
    """Rendered downlinks, one JSON line each, written once and read back a batch at a time."""

    def __init__(self, directory: str) -> None:
        fd, self.path = tempfile.mkstemp(prefix="fleet_push-", suffix=".jsonl", dir=directory)
        self._out = os.fdopen(fd, "wb")
        self.offsets = [0]
        self._position = 0

    def write_batch(self, downlinks: list) -> None:
        data = "".join(
            json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n" for item in downlinks
        ).encode("utf-8")
        self._out.write(data)
        self._position += len(data)
        self.offsets.append(self._position)

    def batches(self):
        self._out.close()
        with open(self.path, "rb") as spool:
            for start, end in zip(self.offsets, self.offsets[1:]):
                spool.seek(start)
                # Split on the newline byte only: str.splitlines() would also
                # split on U+2028 and friends, which json.dumps leaves in a payload.
                yield [json.loads(line) for line in spool.read(end - start).split(b"\n") if line]

    def remove(self) -> None:
        self._out.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _supports_check_mode = True
    _supports_async = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused since ansible-core 2.12
        task_vars = task_vars or {}
        params, devices = self._validated(task_vars)
        downlink_args = {name: params[name] for name in DOWNLINK_OPTIONS if params[name] is not None}
        # The key as given, or as module_defaults give it: masked in every line.
        effective = with_module_defaults(DOWNLINK, self._task, dict(downlink_args), self._templar)
        secrets = {str(effective["api_key"])} if effective.get("api_key") else set()
        try:
            result.update(self._push(params, devices, downlink_args, effective, task_vars, secrets))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        # Like gather_facts: -v shows the summary, not the task's arguments.
        result["_ansible_verbose_override"] = True
        return mask_no_log_values(result, secrets)

    def _validated(self, task_vars: dict) -> tuple:
        args = dict(self._task.args)
        devices = args.pop("devices", None)
        if devices is not None and not isinstance(devices, list):
            raise AnsibleActionFail(
                f"fleet_push: fleet_push_devices must be a list of ICCIDs or device dicts, got {type(devices).__name__}"
            )
        # The fleet-sized list is checked here, not deep-copied by the validator.
        if devices is not None:
            args["devices"] = [] if isinstance(devices, list) else devices
        validation = VALIDATOR.validate(args)
        if validation.error_messages:
            raise AnsibleActionFail(f"fleet_push: {'; '.join(validation.error_messages)}")
        params = validation.validated_parameters
        problem = input_problem(params, task_vars)
        if problem:
            raise AnsibleActionFail(f"fleet_push: {problem}")
        if devices is not None:
            # The task's arguments travel back to ansible-playbook with the
            # result: the fleet need not travel with them.
            self._task.args["devices"] = f"({len(devices)} items)"
        elif params["inventory_group"]:
            group = params["inventory_group"]
            if group not in (task_vars.get("groups") or {}):
                raise AnsibleActionFail(f"fleet_push: inventory group {group} (fleet_push_inventory_group) not found")
        return params, devices

    # -- pass 1: read, render and check everything, spool it ------------------
    def _devices(self, params: dict, devices: list | None, task_vars: dict):
        """The devices of this shard, as (position in the fleet, normalised dict)."""
        if params["devices_csv"]:
            path = find_in_search_path(self._loader, task_vars, "files", params["devices_csv"])
            if not path:
                raise AnsibleActionFail(f"fleet_push: fleet_push_devices_csv {params['devices_csv']!r} not found")
            source = iter_csv_devices(path)
        elif devices is not None:
            source = (device_record(device, f"fleet_push_devices[{index}]") for index, device in enumerate(devices))
        else:
            hosts = task_vars["groups"][params["inventory_group"]]
            source = iter(inventory_devices(hosts, task_vars["hostvars"]))
        return itertools.islice(enumerate(source), params["shard_index"], None, params["shard_count"])

    def _settings(self, params: dict, effective: dict, task_vars: dict) -> MessageSettings:
        template = params["template"] or None
        if template is not None:
            template = find_in_search_path(self._loader, task_vars, "templates", template)
            if not template:
                raise AnsibleActionFail(f"fleet_push: fleet_push_template {params['template']!r} not found")
        return MessageSettings(
            template=template, payload=None if params["payload"] is None else params["payload"][0],
            format=effective.get("format"),
            org_id=str(effective.get("org_id") or "ORG"), topic=effective.get("topic") or "",
            qos=effective.get("qos", 0),
        )

    def _spool(self, params: dict, devices: list | None, effective: dict, task_vars: dict) -> tuple:
        settings = self._settings(params, effective, task_vars)
        # ansible-playbook removes its temporary directory when it exits,
        # however it exits, so the spool goes even when the play is interrupted.
        spool = _Spool(C.DEFAULT_LOCAL_TMP)
        total = 0
        try:
            source = self._devices(params, devices, task_vars)
            while True:
                chunk = list(itertools.islice(source, params["batch_size"]))
                if not chunk:
                    break
                positions, chunk_devices = zip(*chunk)
                spool.write_batch(build_downlinks(self._templar, settings, list(chunk_devices), task_vars, positions))
                total += len(chunk)
        except FleetInputError as exc:
            spool.remove()
            raise AnsibleActionFail(f"fleet_push: {exc}") from None
        except AnsibleError as exc:
            spool.remove()
            raise AnsibleActionFail(f"fleet_push: {to_text(exc.message)}") from None
        except BaseException:
            spool.remove()
            raise
        return spool, total

    # -- pass 2: one monoz_downlink call per batch ------------------------------
    def _push(self, params: dict, devices: list | None, downlink_args: dict, effective: dict, task_vars: dict,
              secrets: set) -> dict:
        spool, total = self._spool(params, devices, effective, task_vars)
        check_mode = bool(self._task.check_mode)
        tally = Tally(
            total=total, batch_count=len(spool.offsets) - 1, path=self._report_path(params, task_vars),
            shard_index=params["shard_index"], shard_count=params["shard_count"], check_mode=check_mode,
        )
        host = task_vars.get("inventory_hostname", "localhost")
        try:
            report = self._open_report(tally)
            for batch, downlinks in enumerate(spool.batches(), 1):
                outcome = None
                if not tally.stop:
                    # monoz_downlink masks its own no_log values; the key is
                    # masked here too before anything reaches a line or the report.
                    outcome = masked_outcome(self._send(downlinks, downlink_args, task_vars), secrets)
                was_stopped = bool(tally.stop)
                rows = tally.count_batch(batch, downlinks, outcome, params["max_failures"])
                if report:
                    self._append(report, rows, tally)
                if outcome is not None:
                    display.display(f"[{host}] {tally.progress_line(batch, tally.stop and not was_stopped)}")
        finally:
            spool.remove()
        result = {"summary": tally.summary(), "changed": bool(tally.would_send if check_mode else tally.sent)}
        if tally.failed:
            result.update(failed=True, msg=tally.failure_message())
        else:
            result["msg"] = tally.summary_line()
            # Printed here, not by a task of its own: -v is not needed to see it.
            display.display(f"[{host}] {result['msg']}")
        return result

    def _send(self, downlinks: list, downlink_args: dict, task_vars: dict) -> dict:
        """One batch through monoz_downlink's action plugin, as a task of that module would run it."""
        task = self._task.copy()
        task.args = dict(downlink_args, devices=downlinks)
        task.action = DOWNLINK
        # The attribute module_defaults are matched by: a property over
        # _resolved_action since 2.19, a plain attribute before.
        if isinstance(getattr(type(task), "resolved_action", None), property):
            task._resolved_action = DOWNLINK  # pylint: disable=protected-access
        else:
            task.resolved_action = DOWNLINK
        action = self._shared_loader_obj.action_loader.get(
            DOWNLINK, task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj,
        )
        return action.run(task_vars=task_vars)

    # -- the report ---------------------------------------------------------------
    @staticmethod
    def _report_path(params: dict, task_vars: dict) -> str | None:
        path = params["report"]
        if path and not os.path.isabs(path):
            path = os.path.join(task_vars.get("playbook_dir") or os.getcwd(), path)
        return path or None

    @staticmethod
    def _open_report(tally: Tally) -> ReportFile | None:
        if not tally.path or tally.check_mode:
            return None
        try:
            return ReportFile(tally.path, tally.report_summary())
        except OSError as exc:
            raise AnsibleActionFail(f"fleet_push: cannot write the report {tally.path}: {to_text(exc)}") from None

    @staticmethod
    def _append(report: ReportFile, rows: list, tally: Tally) -> None:
        try:
            report.append(rows, tally.report_summary())
        except OSError as exc:
            raise AnsibleActionFail(f"fleet_push: cannot write the report {tally.path}: {to_text(exc)}") from None
