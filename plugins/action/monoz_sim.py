# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin for monoz_sim: the controller path of plugin_utils/_controller_action.py."""

from __future__ import annotations

from ansible_collections.monoz.link.plugins.module_utils._sim import run_sim, sim_module_kwargs
from ansible_collections.monoz.link.plugins.plugin_utils._controller_action import ControllerPathAction


class ActionModule(ControllerPathAction):
    MODULE_NAME = "monoz.link.monoz_sim"
    module_kwargs = staticmethod(sim_module_kwargs)
    runner = staticmethod(run_sim)
