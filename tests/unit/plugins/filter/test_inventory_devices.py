# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The inventory_devices filter, against a real inventory and its hostvars."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.hostvars import HostVars
from ansible.vars.manager import VariableManager

from ansible_collections.monoz.link.plugins.filter.inventory_devices import FilterModule, inventory_devices

INVENTORY = """\
[sensors]
sensor-1 monoz_iccid=8988280666000000001 apn=iot.a
sensor-2 monoz_iccid=8988280666000000002 apn=iot.b ansible_connection=local fleet_push_topic=/x
no-iccid apn=iot.c

[sensors:vars]
interval=60
"""


@pytest.fixture
def inventory(tmp_path):
    path = tmp_path / "hosts.ini"
    path.write_text(INVENTORY)
    loader = DataLoader()
    manager = InventoryManager(loader=loader, sources=[str(path)])
    hostvars = HostVars(manager, VariableManager(loader=loader, inventory=manager), loader)
    return manager.get_groups_dict(), hostvars


def test_the_filter_is_registered_under_its_name():
    assert FilterModule().filters() == {"inventory_devices": inventory_devices}


def test_hosts_become_devices_with_their_own_variables(inventory):
    groups, hostvars = inventory
    devices = inventory_devices(["sensor-2", "sensor-1"], hostvars)
    assert [device["iccid"] for device in devices] == ["8988280666000000002", "8988280666000000001"]
    first = devices[0]
    assert first["inventory_hostname"] == "sensor-2"
    assert first["apn"] == "iot.b"
    assert str(first["interval"]) == "60"
    assert "sensors" in first["group_names"]
    # Magic, connection and role variables are not device settings.
    assert not {"groups", "hostvars", "playbook_dir", "omit"} & set(first)
    assert not [name for name in first if name.startswith(("ansible_", "fleet_push_"))]


def test_a_single_host_name_and_none_are_accepted(inventory):
    hostvars = inventory[1]
    assert [d["iccid"] for d in inventory_devices("sensor-1", hostvars)] == ["8988280666000000001"]
    assert inventory_devices(None, hostvars) == []


def test_another_iccid_variable(inventory):
    hostvars = inventory[1]
    assert inventory_devices(["no-iccid"], hostvars, iccid_var="interval")[0]["iccid"] == "60"


def test_a_host_without_an_iccid_fails_naming_it(inventory):
    groups, hostvars = inventory
    with pytest.raises(AnsibleFilterError, match="host 'no-iccid' has no monoz_iccid variable"):
        inventory_devices(groups["sensors"], hostvars)


def test_an_unknown_host_fails_naming_it(inventory):
    hostvars = inventory[1]
    with pytest.raises(AnsibleFilterError, match="host 'ghost' is not in the inventory"):
        inventory_devices(["ghost"], hostvars)


def test_a_bad_iccid_fails_naming_the_host():
    hostvars = {"bad": {"monoz_iccid": "12-34"}}
    with pytest.raises(AnsibleFilterError, match="host bad: iccid must contain digits only"):
        inventory_devices(["bad"], hostvars)
