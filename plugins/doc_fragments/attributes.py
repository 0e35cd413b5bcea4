# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations


class ModuleDocFragment:
    # Attributes every Monoz Link API module shares: each has an action plugin
    # (the controller path), runs anywhere Python and requests are, and is in
    # the action group. Modules add check_mode, diff_mode and idempotent.
    DOCUMENTATION = r"""
options: {}
attributes:
  action:
    support: full
    details:
      - An action plugin runs the module's code in the controller's own process when the task runs on the
        controller in the same Python (local connection, no C(become), no C(async), C(ansible_python_interpreter)
        unset or the controller's). Results are identical; the task's C(environment) applies on both paths.
      - Set E(MONOZ_EXECUTION=module) on the controller to always start a module process.
  async:
    support: full
  platform:
    platforms: all
  action_group:
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
