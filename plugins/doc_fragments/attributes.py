# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Attributes every Monoz Link API module shares: each has an action plugin
    # (the controller path), runs anywhere Python and requests are, and is in
    # the action group. Modules (or READ_ONLY) give the support of check_mode,
    # diff_mode and idempotent, whose descriptions are here.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
  idempotent:
    description:
      - When run twice in a row with the same options against an unchanged API, the second run changes nothing
        and reports RV(ignore:changed=false).
  action:
    description: Indicates this has a corresponding action plugin so some parts of the options can be executed on the controller.
    support: full
    details:
      - The action plugin runs the module's code in the controller's own process when the task runs on the
        controller in the same Python (local connection, no C(become), no C(async), C(ansible_python_interpreter)
        unset or the controller's). Results are identical; the task's C(environment) applies on both paths.
      - Set E(MONOZ_EXECUTION=module) on the controller to always start a module process.
  async:
    description: Supports being used with the C(async) keyword.
    support: full
  bypass_host_loop:
    description: Forces a 'global' task that does not execute per host.
    support: none
  platform:
    description: Target OS/families that can be operated against.
    support: full
    platforms: all
  action_group:
    description: Action is part of action_group(s), for convenient setting of module_defaults.
    support: full
    membership:
      - monoz.link.monoz
"""

    # For modules that only read.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details: Only reads; runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
"""
