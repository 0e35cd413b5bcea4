# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugins taking a fleet-sized list argument: keep its copies down.

Private to the monoz.link collection: not a public API, it may change without notice.

Two copies of a 100,000-device list are ansible-core's, not ours, and cost
more than the push itself:

* ``ArgumentSpecValidator`` deep-copies everything it validates: 40 MB of
  tagged strings for a check that a list is a list (its elements are "raw").
* The worker pickles the task's templated arguments with the result, and
  ansible-playbook unpickles them only for callbacks: 46 MB of pickle and
  65 MB of tagged strings in the parent, for a list nobody reads there.

Avoiding both took the worker's peak for a 100,000-device push from 317 to
280 MB and the parent's from 300 to 250 MB in the memory benchmark
(bench/run_bench.py --memory), which is what keeps the push under 300 MB.
"""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.monoz.link.plugins.plugin_utils._compat import _builtin as builtin_value

# Above this many items a list argument is not sent back with the task result.
ECHO_LIMIT = 1000


def validate_keeping_list(validator: ArgumentSpecValidator, args, name: str):
    """Validate ``args`` without deep-copying the list argument ``name``.

    A list is validated as an empty stand-in and put back into the validated
    parameters; anything else (a comma-separated string, a wrong type) goes
    through the validator as it is.  The other arguments, names included,
    are validated as the built-in types a module process receives: the
    validator's deep copy of ansible-core's tagged strings rebuilds each one
    with its tags, a fifth of the controller path's own time per loop item.
    Returns the ValidationResult.
    """
    value = args.get(name)
    args = {builtin_value(key): (item if key == name else builtin_value(item)) for key, item in args.items()}
    if isinstance(value, list):
        args[name] = []
    validation = validator.validate(args)
    if isinstance(value, list) and not validation.error_messages:
        validation.validated_parameters[name] = value
    return validation


def drop_echoed_list(task, name: str, value) -> None:
    """Replace a big list argument in ``task.args`` by a note, once the action has run.

    A task with ``until`` or ``retries`` runs its action again from these
    arguments, so it keeps them.
    """
    if not isinstance(value, list) or len(value) <= ECHO_LIMIT:
        return
    if task.until or task.retries:
        return
    task.args[name] = f"({len(value)} items, not echoed: see the results)"
