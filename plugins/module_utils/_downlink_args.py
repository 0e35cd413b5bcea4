# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Argument spec of monoz_downlink, shared by the module and its action plugin.

Private to the monoz.link collection: not a public API, it may change without notice.
"""

from __future__ import annotations

from ._module_args import connection_argument_spec, module_kwargs

__all__ = ["connection_argument_spec", "downlink_module_kwargs"]


def downlink_module_kwargs() -> dict:
    """Keyword arguments for AnsibleModule (or ArgumentSpecValidator) of monoz_downlink."""
    return module_kwargs({
        "payload": {"type": "raw"},
        "format": {"type": "str", "choices": ["json", "text"]},
        "topic": {"type": "str", "default": ""},
        "qos": {"type": "int", "default": 0, "choices": [0, 1]},
        "retain": {"type": "bool"},
        "journal": {"type": "path"},
    })
