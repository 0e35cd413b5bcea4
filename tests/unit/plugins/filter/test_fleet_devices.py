# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The fleet_devices filter: any accepted device list becomes dicts with a checked ICCID."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleFilterError

from ansible_collections.monoz.link.plugins.filter.fleet_devices import FilterModule, fleet_devices


def test_the_filter_is_registered_under_its_name():
    assert FilterModule().filters() == {"fleet_devices": fleet_devices}


def test_strings_numbers_and_dicts_become_device_dicts_in_input_order():
    devices = ["8988280666000000002", 8988280666000000001, {"iccid": " 8988280666000000003 ", "apn": "iot.c"}]
    assert fleet_devices(devices) == [
        {"iccid": "8988280666000000002"},
        {"iccid": "8988280666000000001"},
        {"iccid": "8988280666000000003", "apn": "iot.c"},
    ]


def test_the_input_dicts_are_not_changed():
    device = {"iccid": 8988280666000000001, "apn": "iot.a"}
    fleet_devices([device])
    assert device == {"iccid": 8988280666000000001, "apn": "iot.a"}


def test_none_and_an_empty_list_are_an_empty_fleet():
    assert fleet_devices(None) == [] and fleet_devices([]) == []


@pytest.mark.parametrize("devices, message", [
    (["8988280666000000001", {"apn": "x"}], r"devices\[1\] has no iccid key: \['apn'\]"),
    (["8988280666000000001", "89-88"], r"devices\[1\]: iccid must contain digits only"),
    ([True], r"devices\[0\]: iccid must be a string of digits, got bool"),
    ([""], r"devices\[0\]: iccid must not be empty"),
    ("8988280666000000001", r"fleet_devices expects a list, got str"),
    ({"iccid": "1"}, r"fleet_devices expects a list, got dict"),
    (42, r"fleet_devices expects a list, got int"),
])
def test_bad_input_fails_naming_the_element(devices, message):
    with pytest.raises(AnsibleFilterError, match=message):
        fleet_devices(devices)
