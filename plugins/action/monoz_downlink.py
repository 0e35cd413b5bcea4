# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin for monoz_downlink: send on the controller without a module process.

A module call costs about 0.33 s in process start and imports; a task that
runs on the controller anyway (local connection or ``delegate_to:
localhost``, the normal case for an API module) can do the same work inside
the worker for a few milliseconds.  Both paths share every line of behaviour
in ``module_utils``: same argument spec, same validation, same runner, and the
same masking of no_log values.  Any task this path cannot reproduce exactly
(another host, become, async, a task ``environment``) runs the module.
"""

from __future__ import annotations

import json
import os

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

from ansible_collections.monoz.link.plugins.module_utils._api_client import HAS_REQUESTS
from ansible_collections.monoz.link.plugins.module_utils._downlink_args import downlink_module_kwargs
from ansible_collections.monoz.link.plugins.module_utils._downlink_runner import run_downlink
from ansible_collections.monoz.link.plugins.plugin_utils._big_args import drop_echoed_list, validate_keeping_list

MODULE_NAME = "monoz.link.monoz_downlink"
# "module" forces the module path (tests use it to compare both paths);
# "controller" is the default behaviour where possible.
EXECUTION_ENV = "MONOZ_DOWNLINK_EXECUTION"


# Results are searched in slices of this many rows: a JSON text of the whole
# of 100,000 results would be 16 MB at the worker's peak.
_SCAN_ROWS = 1000


def _json_parts(result: dict):
    """The result in pieces whose JSON texts together hold all of its: the
    top level (with ``results`` left out), then ``results`` in slices."""
    rows = result.get("results")
    if not isinstance(rows, list):
        yield result
        return
    yield {key: (None if key == "results" else value) for key, value in result.items()}
    for start in range(0, len(rows), _SCAN_ROWS):
        yield rows[start:start + _SCAN_ROWS]


def _mask_no_log_values(result: dict, no_log_values: set) -> dict:
    """``remove_values`` where it can change anything, and the result as is elsewhere.

    remove_values copies the whole structure: 28% of the worker's time and
    44 MB at 100,000 results.  It can only change a result whose JSON text
    holds a no_log value, because JSON escapes strings character by
    character: a string containing v serialises to text containing v's
    escaped form (numbers print as str() does).  A no_log value spelled
    True or False takes the slow path: JSON spells booleans differently, and
    remove_values is the authority on what it masks.
    """
    if not no_log_values:
        return result
    if any(value in ("True", "False") for value in no_log_values):
        return remove_values(result, no_log_values)
    escaped = [json.dumps(str(value), ensure_ascii=False)[1:-1] for value in no_log_values]
    for part in _json_parts(result):
        text = json.dumps(part, ensure_ascii=False, default=str)
        if any(needle in text for needle in escaped):
            return remove_values(result, no_log_values)
    return result


class ActionModule(ActionBase):
    _supports_check_mode = True
    _supports_async = True

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused since ansible-core 2.12
        if not self._can_run_on_controller():
            result.update(self._execute_module(
                module_name=MODULE_NAME, task_vars=task_vars, wrap_async=self._task.async_val
            ))
            return result
        result.update(self._run_in_process())
        return result

    def _can_run_on_controller(self) -> bool:
        if os.environ.get(EXECUTION_ENV, "controller") == "module":
            return False
        # The module would run as another user, in the background, or with a
        # task environment (which may carry MONOZ_* fallbacks): let it.
        # An unset environment keyword arrives as [{}].
        if self._task.async_val or self._play_context.become or any(self._task.environment or ()):
            return False
        # requests missing on the controller: the module reports
        # missing_required_lib from wherever it runs.
        return HAS_REQUESTS and getattr(self._connection, "transport", None) == "local"

    def _run_in_process(self) -> dict:
        kwargs = downlink_module_kwargs()
        kwargs.pop("supports_check_mode")
        devices = self._task.args.get("devices")
        validation = validate_keeping_list(ArgumentSpecValidator(**kwargs), self._task.args, "devices")
        no_log_values = validation._no_log_values  # pylint: disable=protected-access
        if validation.error_messages:
            errors = validation.errors
            msg = errors.msg
            if any(type(error).__name__ == "UnsupportedError" for error in errors):
                msg = f"Unsupported parameters for ({MODULE_NAME}) module: {msg}"
            return _mask_no_log_values({"failed": True, "msg": msg}, no_log_values)
        run = run_downlink(validation.validated_parameters, bool(self._task.check_mode))
        drop_echoed_list(self._task, "devices", devices)
        task_result = dict(run.result)
        task_result.setdefault("failed", False)
        if run.warnings:
            task_result["warnings"] = list(run.warnings)
        # The module masks no_log values in everything it returns; so must we.
        return _mask_no_log_values(task_result, no_log_values)
