# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The iccid / devices targets every module takes."""

from __future__ import annotations

import pytest

from ansible_collections.monoz.link.plugins.module_utils._errors import InputError
from ansible_collections.monoz.link.plugins.module_utils._targets import Target, parse_targets

ICCID = "8988280666000000001"


def test_iccid_gives_one_target():
    assert parse_targets({"iccid": f" {ICCID}\n", "devices": None}) == [Target(ICCID)]


def test_iccid_as_a_yaml_int_is_accepted():
    assert parse_targets({"iccid": 8988280666000000001}) == [Target(ICCID)]


def test_devices_give_targets_in_input_order_duplicates_kept():
    devices = ["3", {"iccid": "1"}, 2, "3"]
    assert [t.iccid for t in parse_targets({"devices": devices})] == ["3", "1", "2", "3"]


def test_other_keys_of_a_device_dict_are_ignored_without_overrides():
    # A CSV row or monoz_downlink's device list feeds every module.
    devices = [{"iccid": ICCID, "name": "pump-7", "payload": {"apn": "x"}, "site": "Zürich"}]
    assert parse_targets({"devices": devices}) == [Target(ICCID)]


def test_allowed_keys_refuse_a_typo_and_keep_the_settings():
    with pytest.raises(InputError, match=r"^devices\[1\] has unknown key\(s\) paylod; allowed: iccid, payload$"):
        parse_targets({"devices": ["1", {"iccid": "2", "paylod": "x"}]}, allowed_keys=("iccid", "payload"))
    assert parse_targets({"devices": [{"iccid": "2", "payload": "x"}]}, ("iccid", "payload")) == [
        Target("2", {"payload": "x"})]


def test_neither_option_gives_no_targets():
    assert parse_targets({"iccid": None, "devices": None}) == []


def test_empty_devices_list_is_a_valid_empty_fleet():
    assert parse_targets({"devices": []}) == []


@pytest.mark.parametrize("devices, message", [
    ([ICCID, "12x"], "devices[1] (ICCID 12x): iccid must contain digits only, got '12x'"),
    ([ICCID, {"name": "x"}], "devices[1] has no iccid"),
    ([ICCID, ICCID, "1" * 23], "devices[2] (ICCID " + "1" * 23 + "): iccid must have at most 22 digits"),
    ([True], "devices[0] (ICCID ?): iccid must be a string of digits, got bool"),
    ([{"iccid": None}], "devices[0] (ICCID ?): iccid must be a string of digits, got NoneType"),
    ([""], "devices[0] (ICCID ): iccid must not be empty"),
    ([["1"]], "devices[0] (ICCID ?): iccid must be a string of digits, got list"),
])
def test_a_bad_device_names_its_index_and_iccid(devices, message):
    with pytest.raises(InputError) as info:
        parse_targets({"devices": devices})
    assert str(info.value).startswith(message)


def test_devices_that_is_not_a_list_is_refused():
    with pytest.raises(InputError, match="^devices must be a list, got str$"):
        parse_targets({"devices": ICCID})


def test_the_last_of_ten_thousand_devices_is_checked_too():
    devices = [str(n) for n in range(1, 10000)] + ["42a"]
    with pytest.raises(InputError, match=r"^devices\[9999\] \(ICCID 42a\): iccid"):
        parse_targets({"devices": devices})
