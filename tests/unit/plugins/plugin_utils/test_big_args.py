# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""_big_args: validation without the list's deepcopy, and not echoing a big list back."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.monoz.link.plugins.module_utils._downlink_args import downlink_module_kwargs
from ansible_collections.monoz.link.plugins.plugin_utils._big_args import (
    ECHO_LIMIT,
    drop_echoed_list,
    validate_keeping_list,
)
from ansible_collections.monoz.link.plugins.plugin_utils._compat import trust_as_template
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY, ICCID, ORG_ID

CREDENTIALS = {"org_id": ORG_ID, "api_key": API_KEY}


def validator() -> ArgumentSpecValidator:
    kwargs = downlink_module_kwargs()
    kwargs.pop("supports_check_mode")  # AnsibleModule's, not the validator's
    return ArgumentSpecValidator(**kwargs)


def devices(count: int = 3) -> list:
    return [f"89882806660000{n:05d}" for n in range(count)]


# --- validate_keeping_list ---------------------------------------------------

class SubclassedStr(str):
    """What ansible-core's own string types are to the validator: a str subclass."""


def test_other_arguments_are_validated_as_built_in_types():
    payload = trust_as_template("{{ not rendered here }}")
    args = {**CREDENTIALS, SubclassedStr("iccid"): SubclassedStr(ICCID),
            "payload": {"apn": SubclassedStr("iot"), "raw": payload}}

    params = validate_keeping_list(validator(), args, "devices").validated_parameters

    # Exactly str, not a subclass: isinstance() would accept the tagged ones.
    assert all(name.__class__ is str for name in params)
    assert params["iccid"].__class__ is str and params["iccid"] == ICCID
    assert params["payload"]["apn"].__class__ is str
    assert params["payload"]["raw"].__class__ is str and params["payload"]["raw"] == "{{ not rendered here }}"


def test_list_comes_back_as_the_same_object_and_the_rest_is_validated():
    device_list = devices() + [{"iccid": ICCID, "payload": "m"}]
    args = {**CREDENTIALS, "devices": device_list, "payload": "hello", "concurrency": "16"}

    validation = validate_keeping_list(validator(), args, "devices")

    assert validation.error_messages == []
    params = validation.validated_parameters
    # The point of the helper: no copy of the fleet.
    assert params["devices"] is device_list
    assert params["devices"] == devices() + [{"iccid": ICCID, "payload": "m"}]
    # Everything else as the validator alone makes it: converted and defaulted.
    direct = validator().validate(args).validated_parameters
    assert {k: v for k, v in params.items() if k != "devices"} == {k: v for k, v in direct.items() if k != "devices"}
    assert params["concurrency"] == 16
    assert params["qos"] == 0
    assert params["topic"] == ""
    assert params["timeout"] == 30.0
    assert params["iccid"] is None
    assert validation._no_log_values == {API_KEY}  # pylint: disable=protected-access


@pytest.mark.parametrize("value, expected", [("a,b", ["a", "b"]), (42, ["42"])], ids=["comma-string", "int"])
def test_non_list_is_still_converted_by_the_validator(value, expected):
    validation = validate_keeping_list(validator(), {**CREDENTIALS, "devices": value, "payload": "m"}, "devices")

    assert validation.error_messages == []
    assert validation.validated_parameters["devices"] == expected


@pytest.mark.parametrize("bad", [
    pytest.param({"devices": devices(), "concurrency": "x"}, id="int-option-given-x"),
    pytest.param({"devices": devices(), "qos": 5}, id="choice-out-of-range"),
    pytest.param({"devices": {"iccid": ICCID}}, id="devices-as-dict"),
    pytest.param({"devices": devices(), "bogus": 1}, id="unsupported-option"),
])
def test_errors_are_those_of_validating_directly(bad):
    args = {**CREDENTIALS, "payload": "m", **bad}

    kept = validate_keeping_list(validator(), args, "devices")
    direct = validator().validate(args)

    assert kept.error_messages, "the bad input must fail"
    assert kept.error_messages == direct.error_messages


@pytest.mark.parametrize("device_list", [devices(), []], ids=["list", "empty-list"])
def test_iccid_and_devices_stay_mutually_exclusive(device_list):
    # The stand-in is [], not a missing key: the check must still see devices.
    args = {**CREDENTIALS, "iccid": ICCID, "devices": device_list, "payload": "m"}

    validation = validate_keeping_list(validator(), args, "devices")

    assert validation.error_messages == ["parameters are mutually exclusive: iccid|devices"]
    assert validation.error_messages == validator().validate(args).error_messages


def test_callers_args_are_not_mutated():
    device_list = devices(5)
    args = {**CREDENTIALS, "devices": device_list, "payload": "m", "concurrency": "4"}
    before = copy.deepcopy(args)

    validate_keeping_list(validator(), args, "devices")

    assert args == before
    assert args["devices"] is device_list
    assert device_list == before["devices"]


# --- drop_echoed_list ----------------------------------------------------------

def fake_task(value, until=None, retries=None) -> SimpleNamespace:
    # Task's until is a list (empty when unset); retries is None when unset.
    return SimpleNamespace(args={"devices": value, "payload": "m"}, until=list(until or []), retries=retries)


def test_list_at_the_limit_is_kept():
    value = devices(ECHO_LIMIT)
    task = fake_task(value)

    drop_echoed_list(task, "devices", value)

    assert ECHO_LIMIT == 1000
    assert task.args["devices"] is value


def test_list_above_the_limit_is_replaced_by_a_note_naming_the_count():
    value = devices(ECHO_LIMIT + 1)
    task = fake_task(value)

    drop_echoed_list(task, "devices", value)

    note = task.args["devices"]
    assert isinstance(note, str)
    assert "1001" in note
    assert task.args["payload"] == "m"
    assert len(value) == 1001  # the list itself is left alone: the results still need it


def test_big_list_is_kept_when_the_task_has_until():
    # until re-runs the action from task.args: it must still hold the list.
    value = devices(ECHO_LIMIT + 1)
    task = fake_task(value, until=["result is succeeded"])

    drop_echoed_list(task, "devices", value)

    assert task.args["devices"] is value


@pytest.mark.parametrize("retries", [1, 3])
def test_big_list_is_kept_when_the_task_has_retries(retries):
    value = devices(ECHO_LIMIT + 1)
    task = fake_task(value, retries=retries)

    drop_echoed_list(task, "devices", value)

    assert task.args["devices"] is value


@pytest.mark.parametrize("value", ["a," * 2000, ("x",) * 2000, None], ids=["string", "tuple", "none"])
def test_non_list_is_untouched(value):
    task = fake_task(value)

    drop_echoed_list(task, "devices", value)

    assert task.args["devices"] is value
