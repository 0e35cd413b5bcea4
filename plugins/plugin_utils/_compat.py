# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The controller-side differences between the supported ansible-core versions (2.16 to 2.21).

Private to the monoz.link collection: not a public API, it may change without notice.

Plugins import what differs between cores from here, so that each difference
is handled once, in one place that the unit tests run on every core.

- ``trust_as_template``: since 2.19 the templar renders a string only when it
  is tagged as a trusted template (``ansible.template.trust_as_template``, new
  in 2.19); before 2.19 every string given to the templar is a template, so
  the value comes back unchanged.
- ``module_args``: before 2.19 a task's arguments hold ansible-core's own
  subclasses of str, dict and list (``AnsibleUnicode``, ``AnsibleUnsafeText``,
  ``AnsibleMapping``...), and ``ArgumentSpecValidator`` names a wrong value's
  Python class in its message ("is of type <class '...AnsibleUnicode'>"),
  where a module process, which gets its arguments through JSON, says
  ``<class 'str'>``.  The controller path validates the built-in types, so both
  paths fail with the same words.  Since 2.19 the validator names the type
  itself ("is of type str"), and the arguments are used as they are: no copy
  of a fleet-sized list.
- ``as_data``: before 2.19 the templar renders any string it meets in a
  variable unless it is wrapped as unsafe, so values read from a file (a CSV
  cell holding ``{{ ... }}``) are wrapped before a template sees them; since
  2.19 a string is rendered only when trusted, and values are left as they are.
- ``with_module_defaults``: ansible-core merges ``module_defaults`` into a
  task's arguments before it drops the options templated to ``omit``, so
  ``org_id: "{{ x | default(omit) }}"`` leaves no org_id even where
  ``module_defaults`` give one. The action plugins put the defaults back for
  the options a task left out, the way ansible-core does for the modules its
  own action plugins run: ``_apply_action_arg_defaults`` since 2.19,
  ``get_action_args_with_defaults`` before (which also templates the
  defaults).
"""

from __future__ import annotations

from collections.abc import Mapping

try:
    from ansible.template import trust_as_template as _trust_as_template
except ImportError:  # ansible-core < 2.19
    _trust_as_template = None

try:
    from ansible.executor.module_common import _apply_action_arg_defaults
except ImportError:  # ansible-core < 2.19
    _apply_action_arg_defaults = None
try:
    from ansible.executor.module_common import get_action_args_with_defaults
except ImportError:  # ansible-core >= 2.19 (replaced by _apply_action_arg_defaults)
    get_action_args_with_defaults = None

HAS_TEMPLATE_TRUST = _trust_as_template is not None

if HAS_TEMPLATE_TRUST:
    _wrap_var = None
else:  # ansible-core < 2.19
    from ansible.utils.unsafe_proxy import wrap_var as _wrap_var


def trust_as_template(value: str) -> str:
    """``value``, a template the plugin itself wrote, as one the templar renders on every core."""
    if _trust_as_template is None:
        return value
    return _trust_as_template(value)


def as_data(value):
    """``value`` (strings, dicts and lists of them) as data that no template renders again, on every core."""
    if _wrap_var is None:
        return value
    return _wrap_var(value)


def module_args(args: Mapping) -> Mapping:
    """A task's arguments as the built-in types a module process would receive."""
    if HAS_TEMPLATE_TRUST:
        return args
    return _builtin(args)


def with_module_defaults(action: str, task, args: dict, templar) -> dict:
    """``args`` plus the module_defaults of ``action`` for every option the task left out."""
    if getattr(getattr(task, "_parent", None), "_play", None) is None or not task.module_defaults:
        return args  # a task outside a play (unit tests) has no module_defaults
    if _apply_action_arg_defaults is None:
        return get_action_args_with_defaults(
            action, args, task.module_defaults, templar, action_groups=task._parent._play._action_groups
        )
    return _apply_action_arg_defaults(action, task, args, templar)


def _builtin(value):
    # str.__str__ and bytes(...) return exact built-in objects, even for a
    # subclass that overrides __str__ (AnsibleUnsafeText returns itself).
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, Mapping):
        return {_builtin(key): _builtin(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_builtin(item) for item in value]
    return value
