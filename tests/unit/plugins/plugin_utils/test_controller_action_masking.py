# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""mask_no_log_values: remove_values wherever a no_log value can be, the result as is elsewhere."""

from __future__ import annotations

import json

import pytest

from ansible.module_utils.common.parameters import remove_values

from ansible_collections.monoz.link.plugins.plugin_utils import _controller_action
from ansible_collections.monoz.link.plugins.plugin_utils._controller_action import _SCAN_ROWS, mask_no_log_values
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY

ROWS = 2500  # three slices of _SCAN_ROWS, the last one short


def big_result(rows: int = ROWS) -> dict:
    return {
        "changed": True,
        "failed": False,
        "msg": f"{rows} downlinks sent",
        "summary": {"total": rows, "sent": rows, "failed": 0, "skipped": 0},
        "results": [
            {"iccid": f"8988280666{n:09d}", "status": "sent", "status_code": 200, "attempts": 1, "msg": "ok",
             "retain": False}
            for n in range(rows)
        ],
    }


@pytest.fixture
def remove_values_calls(monkeypatch):
    """Counts the calls of remove_values made by the action plugin."""
    calls = []

    def spy(value, no_log_strings):
        calls.append(no_log_strings)
        return remove_values(value, no_log_strings)

    monkeypatch.setattr(_controller_action, "remove_values", spy)
    return calls


def test_no_no_log_values_returns_the_same_object(remove_values_calls):
    result = big_result()

    assert mask_no_log_values(result, set()) is result
    assert remove_values_calls == []


@pytest.mark.parametrize("row", [0, 1700, ROWS - 1])
def test_key_in_one_row_of_a_later_slice_is_masked(row, remove_values_calls):
    assert _SCAN_ROWS == 1000  # so row 1700 is in the second slice, ROWS - 1 in the short last one
    result = big_result()
    result["results"][row]["msg"] = f"HTTP 500 for ICCID x: bad key {API_KEY} refused"

    masked = mask_no_log_values(result, {API_KEY})

    assert masked is not result
    assert API_KEY not in json.dumps(masked)
    assert "********" in masked["results"][row]["msg"]
    assert len(masked["results"]) == ROWS
    assert len(remove_values_calls) == 1


def test_key_that_appears_nowhere_returns_the_identical_object(remove_values_calls):
    result = big_result()

    assert mask_no_log_values(result, {API_KEY}) is result
    # Not even one copy of the 2,500 rows.
    assert remove_values_calls == []


@pytest.mark.parametrize("field", ["msg", "summary"])
def test_key_in_a_top_level_field_is_masked(field):
    result = big_result()
    if field == "msg":
        result["msg"] = f"refused with {API_KEY}"
    else:
        result["summary"]["note"] = f"key={API_KEY}"

    masked = mask_no_log_values(result, {API_KEY})

    assert masked is not result
    assert API_KEY not in json.dumps(masked)


def test_key_in_a_result_without_results_is_masked():
    # Failures from validation have no "results": the whole result is one slice.
    result = {"failed": True, "msg": f"bad value {API_KEY}"}

    masked = mask_no_log_values(result, {API_KEY})

    assert masked == {"failed": True, "msg": "bad value ********"}


@pytest.mark.parametrize("key", ["True", "False"])
def test_boolean_spelling_takes_the_remove_values_path(key, remove_values_calls):
    # JSON spells booleans true/false, so the text scan cannot stand in for
    # remove_values' str() matching: these always take the slow path.
    result = big_result(10)

    masked = mask_no_log_values(result, {key})

    assert len(remove_values_calls) == 1
    assert masked is not result
    assert masked == remove_values(result, {key})


@pytest.mark.parametrize("key", ['k3y"quoted', "k3y\\back", "k3y\\\"both", "k3y\nline", "k3y-ünïcode"])
def test_key_with_json_escaped_characters_is_still_found(key):
    result = big_result()
    result["results"][1700]["msg"] = f"refused: {key}!"

    masked = mask_no_log_values(result, {key})

    assert masked is not result
    assert key not in masked["results"][1700]["msg"]
    assert masked["results"][1700]["msg"] == "refused: ********!"


def test_numeric_field_containing_the_key_is_masked():
    # remove_values matches numbers by str(); JSON prints ints and floats the same way.
    result = big_result()
    result["results"][1500]["status_code"] = 5551234

    masked = mask_no_log_values(result, {"5551234"})

    assert masked is not result
    assert masked["results"][1500]["status_code"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
