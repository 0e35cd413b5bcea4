# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The main() of every Monoz Link API module.

Private to the monoz.link collection: not a public API, it may change without notice.

A module is its argument spec and its runner; this turns the runner's result
into exit_json or fail_json, the same way for every module, and is what the
controller path (plugins/plugin_utils/_controller_action.py) mirrors.
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ._api_client import HAS_REQUESTS, REQUESTS_IMPORT_ERROR


def run_module(module_kwargs: dict, runner) -> None:
    """Validate the arguments, run ``runner(params, check_mode)`` and exit with its result."""
    module = AnsibleModule(**module_kwargs)
    if not HAS_REQUESTS:
        module.fail_json(msg=missing_required_lib("requests"), exception=REQUESTS_IMPORT_ERROR)
    run = runner(module.params, module.check_mode)
    for warning in run.warnings:
        module.warn(warning)
    if run.result.get("failed"):
        module.fail_json(**run.result)
    module.exit_json(**run.result)
