# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""An option templated to omit leaves module_defaults in force, on both paths, and the role relies on it."""

from __future__ import annotations

from e2e_support import iccid


def test_omitted_options_take_module_defaults_and_the_role_needs_no_args_template(emu, ansible, execution):
    device, role_device = iccid(70), iccid(71)
    run = ansible.run("omit_module_defaults.yml",
                      {"e2e_profile": emu.profile(), "e2e_iccid": device, "e2e_role_iccid": role_device})
    assert run.rc == 0, run.describe()
    assert run.result["single"]["changed"] is True
    assert [m["payload"] for m in emu.received_exactly(device, 1)] == ["omitted-options"]
    assert [m["payload"] for m in emu.received_exactly(role_device, 1)] == ["from-the-role"]
    # the role passes its options one by one: no "args: {{ ... }}" and so no warning about it
    assert "template for task args" not in run.output
