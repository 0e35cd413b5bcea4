# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Action plugin for monoz_downlink: the controller path of plugin_utils/_controller_action.py."""

from __future__ import annotations

from ansible_collections.monoz.link.plugins.module_utils._downlink_args import downlink_module_kwargs
from ansible_collections.monoz.link.plugins.module_utils._downlink_runner import run_downlink
from ansible_collections.monoz.link.plugins.plugin_utils._controller_action import ControllerPathAction


class ActionModule(ControllerPathAction):
    MODULE_NAME = "monoz.link.monoz_downlink"
    module_kwargs = staticmethod(downlink_module_kwargs)
    runner = staticmethod(run_downlink)
