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
"""

from __future__ import annotations

from collections.abc import Mapping

try:
    from ansible.template import trust_as_template as _trust_as_template
except ImportError:  # ansible-core < 2.19
    _trust_as_template = None

HAS_TEMPLATE_TRUST = _trust_as_template is not None


def trust_as_template(value: str) -> str:
    """``value``, a template the plugin itself wrote, as one the templar renders on every core."""
    if _trust_as_template is None:
        return value
    return _trust_as_template(value)


def module_args(args: Mapping) -> Mapping:
    """A task's arguments as the built-in types a module process would receive."""
    if HAS_TEMPLATE_TRUST:
        return args
    return _builtin(args)


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
