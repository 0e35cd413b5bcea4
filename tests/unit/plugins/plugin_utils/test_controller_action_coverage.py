# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The controller path serves every module of the action group, with the very functions the module runs."""

from __future__ import annotations

import importlib
import os

import pytest
import yaml

from ansible_collections.monoz.link.plugins.plugin_utils._controller_action import ControllerPathAction

COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


def _action_group() -> list:
    with open(os.path.join(COLLECTION_ROOT, "meta", "runtime.yml"), encoding="utf-8") as handle:
        return yaml.safe_load(handle)["action_groups"]["monoz"]


def test_the_action_group_lists_every_api_module():
    modules = sorted(name[:-3] for name in os.listdir(os.path.join(COLLECTION_ROOT, "plugins", "modules"))
                     if name.startswith("monoz_") and name.endswith(".py"))
    assert sorted(_action_group()) == modules


@pytest.mark.parametrize("name", _action_group())
def test_module_has_a_controller_path_running_its_own_functions(name):
    action = importlib.import_module(f"ansible_collections.monoz.link.plugins.action.{name}").ActionModule
    module = importlib.import_module(f"ansible_collections.monoz.link.plugins.modules.{name}")
    assert issubclass(action, ControllerPathAction)
    assert action.MODULE_NAME == f"monoz.link.{name}"
    # main() calls these two by the names it imported: the action must hold the same objects
    assert getattr(module, action.runner.__name__) is action.runner
    assert getattr(module, action.module_kwargs.__name__) is action.module_kwargs
