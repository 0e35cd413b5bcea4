# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The controller path shared by every Monoz Link action plugin.

Private to the monoz.link collection: not a public API, it may change without notice.

A module call costs a process start and the imports of its module_utils; a
task that runs on the controller anyway (local connection or ``delegate_to:
localhost``, the normal case for an API module) can do the same work inside
the worker for a few milliseconds.  Both paths share every line of behaviour
in ``module_utils``: the same argument spec, validation, runner and masking of
no_log values.  The work runs in-process only where the module would run in
the same Python with the same environment; anything else runs the module.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

from ansible import constants as C
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.common.parameters import remove_values
from ansible.plugins.action import ActionBase

from ansible_collections.monoz.link.plugins.module_utils._api_client import HAS_REQUESTS, SessionKeeper
from ansible_collections.monoz.link.plugins.plugin_utils._big_args import drop_echoed_list, validate_keeping_list
from ansible_collections.monoz.link.plugins.plugin_utils._compat import module_args, with_module_defaults

# "module" forces the module path (tests use it to compare both paths); any
# other value, or none, lets the plugin choose.  The older name, from when
# only monoz_downlink had a controller path, still works.
EXECUTION_ENV = "MONOZ_EXECUTION"
LEGACY_EXECUTION_ENV = "MONOZ_DOWNLINK_EXECUTION"

# Interpreter settings that ask ansible-core to discover the interpreter.
_DISCOVERY_MODES = ("auto", "auto_silent", "auto_legacy", "auto_legacy_silent")

# The items of a loop (and the batches of an action that calls this one per
# batch) run one after another in one worker process: they share a session
# and its keep-alive connections instead of each opening its own.
KEPT_SESSIONS = SessionKeeper()

# Results are searched for no_log values in slices of this many rows: a JSON
# text of 100,000 results at once would be 16 MB at the worker's peak.
_SCAN_ROWS = 1000


def forced_module_path() -> bool:
    """True when the environment asks for the module path."""
    return "module" in (os.environ.get(EXECUTION_ENV), os.environ.get(LEGACY_EXECUTION_ENV))


def python_environment(path: str) -> tuple | None:
    """What makes two interpreter paths run the same Python with the same packages.

    A virtualenv's ``bin/python`` is a symlink to its base interpreter, so
    resolving links would equate a venv holding ``requests`` with a base
    Python that lacks it: a venv is identified by its directory instead.
    """
    found = shutil.which(path) if os.sep not in path else path
    if not found or not os.path.exists(found):
        return None
    found = os.path.abspath(found)
    venv = os.path.dirname(os.path.dirname(found))
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        return ("venv", os.path.realpath(venv))
    return ("python", os.path.realpath(found))


def controller_python_environment() -> tuple:
    if sys.prefix != sys.base_prefix:
        return ("venv", os.path.realpath(sys.prefix))
    return ("python", os.path.realpath(sys.executable))


def validation_failure_message(validation, module_name: str) -> str:
    """The message AnsibleModule fails with for the same validation errors, word for word."""
    msg = validation.errors.msg
    if type(validation.errors[0]).__name__ == "UnsupportedError":
        msg = f"Unsupported parameters for ({module_name}) module: {msg}"
    return msg


def _json_parts(result: dict):
    """The result in pieces whose JSON texts together hold all of it: the
    top level (with ``results`` left out), then ``results`` in slices."""
    rows = result.get("results")
    if not isinstance(rows, list):
        yield result
        return
    yield {key: (None if key == "results" else value) for key, value in result.items()}
    for start in range(0, len(rows), _SCAN_ROWS):
        yield rows[start:start + _SCAN_ROWS]


def mask_no_log_values(result: dict, no_log_values: set) -> dict:
    """``remove_values`` where it can change anything, and the result as is elsewhere.

    remove_values copies the whole structure: at 100,000 results that was 28%
    of the worker's time and 44 MB of its peak when measured with the push
    benchmark.  It can only change a result whose JSON text holds a no_log
    value, because JSON escapes strings character by character: a string
    containing v serialises to text containing v's escaped form (numbers
    print as str() does).  A no_log value spelled True or False takes the
    slow path: JSON spells booleans differently, and remove_values is the
    authority on what it masks.
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


class _TaskEnvironment:
    """Applies a task's ``environment`` to this worker process for the duration of one run.

    Each task runs in a worker process forked for it, and the variables are
    put back afterwards anyway, so nothing leaks into later tasks.
    """

    def __init__(self, variables: dict) -> None:
        self.variables = {str(name): str(value) for name, value in variables.items()}
        self._saved: dict = {}

    def __enter__(self) -> _TaskEnvironment:
        self._saved = {name: os.environ.get(name) for name in self.variables}
        os.environ.update(self.variables)
        return self

    def __exit__(self, *exc_info) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


class ControllerPathAction(ActionBase):
    """Runs a Monoz Link module's runner in the worker when that is the same as running the module.

    Subclasses set ``MODULE_NAME`` and two functions from module_utils:
    ``module_kwargs()`` (the AnsibleModule keyword arguments) and
    ``runner(params, check_mode, client_factory=...)`` (returns an object
    with ``result`` and ``warnings``), exactly what the module's main() uses;
    here its clients share the worker's kept session.
    """

    _supports_check_mode = True
    _supports_async = True

    MODULE_NAME = ""
    # A fleet-sized list argument that is validated and echoed without copies.
    LIST_ARGUMENT = "devices"

    @staticmethod
    def module_kwargs() -> dict:
        raise NotImplementedError

    @staticmethod
    def runner(params: dict, check_mode: bool, client_factory=None):
        raise NotImplementedError

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp  # unused since ansible-core 2.12
        task_vars = task_vars or {}
        # An option templated to omit still lets module_defaults apply, on
        # both paths: the module process gets these arguments too.
        self._task.args = with_module_defaults(self.MODULE_NAME, self._task, self._task.args, self._templar)
        if not self.runs_on_controller(task_vars):
            result.update(self._execute_module(
                module_name=self.MODULE_NAME, task_vars=task_vars, wrap_async=self._task.async_val
            ))
            return result
        environment: dict = {}
        self._compute_environment_string(raw_environment_out=environment)
        with _TaskEnvironment(environment):
            result.update(self._run_in_process())
        return result

    # -- where to run --------------------------------------------------------
    def runs_on_controller(self, task_vars: dict) -> bool:
        """True when running in this worker is exactly what the module process would do."""
        if forced_module_path() or not HAS_REQUESTS:
            # Without requests here, the module reports missing_required_lib
            # from wherever it runs.
            return False
        if getattr(self._connection, "transport", None) != "local":
            return False
        # Another user (become) or the background (async) is the module's job.
        if self._task.async_val or self._play_context.become:
            return False
        return self._interpreter_is_ours(task_vars)

    def _interpreter_is_ours(self, task_vars: dict) -> bool:
        """The module would run in this Python: the interpreter is not set, or is the controller's."""
        host_vars = task_vars
        if self._task.delegate_to:
            host_vars = (task_vars.get("ansible_delegated_vars") or {}).get(self._task.delegate_to, task_vars)
        try:
            configured = C.config.get_config_value("INTERPRETER_PYTHON", variables=host_vars)
            interpreter = str(self._templar.template(configured) or "").strip()
        except Exception:  # pylint: disable=broad-exception-caught
            # An interpreter setting we cannot read is one we cannot match:
            # the module path will report on it the way ansible-core does.
            return False
        if not interpreter or interpreter in _DISCOVERY_MODES:
            discovered = (host_vars.get("ansible_facts") or {}).get("discovered_interpreter_python")
            if not discovered:
                return True
            interpreter = str(discovered)
        if " " in interpreter:
            return False  # an interpreter with arguments is not a plain path
        return python_environment(interpreter) == controller_python_environment()

    # -- the work --------------------------------------------------------------
    def _run_in_process(self) -> dict:
        kwargs = self.module_kwargs()
        kwargs.pop("supports_check_mode", None)
        listed = self._task.args.get(self.LIST_ARGUMENT)
        validation = validate_keeping_list(
            ArgumentSpecValidator(**kwargs), module_args(self._task.args), self.LIST_ARGUMENT
        )
        no_log_values = validation._no_log_values  # pylint: disable=protected-access
        if validation.error_messages:
            failure = {"failed": True, "msg": validation_failure_message(validation, self.MODULE_NAME)}
            return mask_no_log_values(failure, no_log_values)
        run = self.runner(validation.validated_parameters, bool(self._task.check_mode),
                          client_factory=KEPT_SESSIONS.client)
        drop_echoed_list(self._task, self.LIST_ARGUMENT, listed)
        task_result = dict(run.result)
        task_result.setdefault("failed", False)
        if run.warnings:
            task_result["warnings"] = list(run.warnings)
        # The module masks no_log values in everything it returns; so must we.
        return mask_no_log_values(task_result, no_log_values)
