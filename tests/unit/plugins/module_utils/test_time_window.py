# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""ISO 8601 instants, look-backs and the API's time format for monoz_data_info."""

from __future__ import annotations

import calendar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.monoz.link.plugins.module_utils._errors import InputError
from ansible_collections.monoz.link.plugins.module_utils._time_window import (
    MAX_INSTANT,
    format_instant,
    parse_instant,
    parse_look_back,
    resolve_window,
)

NS = 1_000_000_000
T0 = calendar.timegm((2024, 3, 11, 4, 19, 55, 0, 0, 0)) * NS  # 2024-03-11T04:19:55Z


@pytest.mark.parametrize("text, expected", [
    ("2024-03-11T04:19:55Z", T0),
    ("2024-03-11T04:19:55.5799558Z", T0 + 579955800),
    ("2024-03-11T04:19:55.123456789Z", T0 + 123456789),
    ("2024-03-11t04:19:55z", T0),
    ("2024-03-11 04:19:55+00:00", T0),
    ("2024-03-11T06:19:55+02:00", T0),
    ("2024-03-11T06:19:55+0200", T0),
    ("2024-03-11T02:19:55-02", T0),
    ("2024-03-11T04:19:55", T0),          # no zone: UTC
    ("2024-03-11T04:19Z", T0 - 55 * NS),
    ("2024-03-11", T0 - (4 * 3600 + 19 * 60 + 55) * NS),
    (" 2024-03-11T04:19:55Z ", T0),
    ("2024-03-11T04:19:55,5Z", T0 + 500000000),
])
def test_iso_8601_forms_parse_to_the_same_instant(text, expected):
    assert parse_instant(text) == expected


@pytest.mark.parametrize("text", [
    "", "now", "4h", "2024-3-11", "2024-13-01", "2024-02-30", "2024-03-11T24:00:00Z", "2024-03-11T04:60Z",
    "2024-03-11T04:19:55+25:00", "2024-03-11T04:19:55.Z", "2024-03-11T04:19:55.1234567890Z", "11/03/2024",
    "2024-03-11T04:19:55Z extra",
])
def test_what_is_not_iso_8601_is_none(text):
    assert parse_instant(text) is None


@pytest.mark.parametrize("text, seconds", [
    ("30m", 1800), ("4h", 14400), ("2d", 172800), ("1w", 604800), ("90s", 90), ("1.5h", 5400), (" 4 h ", 14400),
])
def test_look_backs(text, seconds):
    assert parse_look_back(text) == seconds * NS


@pytest.mark.parametrize("text", ["4", "h", "4H", "4y", "-4h", "4hours", "1e3h", "4h4m"])
def test_what_is_not_a_look_back_is_none(text):
    assert parse_look_back(text) is None


def test_look_back_counts_back_from_now_by_default():
    assert resolve_window("4h", None, now=T0) == (T0 - 4 * 3600 * NS, T0)


def test_look_back_counts_back_from_an_explicit_end():
    assert resolve_window("30m", "2024-03-11T04:19:55Z", now=T0 + 10**15) == (T0 - 1800 * NS, T0)


def test_explicit_start_and_end():
    assert resolve_window("2024-03-11T00:00:00Z", "2024-03-11T04:19:55Z", now=0) == (T0 - 15595 * NS, T0)


@pytest.mark.parametrize("start, end, message", [
    ("yesterday", None, "start must be an ISO 8601 time"),
    ("", None, "start is required"),
    (None, None, "start is required"),
    (42, None, "start is required"),
    ("0h", None, "start must look back more than nothing"),
    ("999999999w", None, "start must not be before 1970"),
    ("2024-03-12T00:00:00Z", "2024-03-11T00:00:00Z", "start (2024-03-12T00:00:00.000Z) is after end"),
    ("4h", "later", "end must be an ISO 8601 time"),
    ("4h", "1969-12-31T00:00:00Z", "end must not be before 1970"),
])
def test_bad_windows_name_the_option(start, end, message):
    with pytest.raises(InputError) as info:
        resolve_window(start, end, now=T0)
    assert str(info.value).startswith(message)


def test_an_end_beyond_what_the_api_can_write_is_cut_to_year_9999():
    assert resolve_window("1h", "9999-12-31T23:59:59.9999999Z", now=T0)[1] == MAX_INSTANT
    assert format_instant(MAX_INSTANT, round_up=True) == "9999-12-31T23:59:59.999Z"


def test_format_is_utc_with_milliseconds_cut_down_or_rounded_up():
    instant = T0 + 579955800
    assert format_instant(instant) == "2024-03-11T04:19:55.579Z"
    assert format_instant(instant, round_up=True) == "2024-03-11T04:19:55.580Z"
    assert format_instant(T0, round_up=True) == "2024-03-11T04:19:55.000Z"
    assert format_instant(T0 + 999_999_999, round_up=True) == "2024-03-11T04:19:56.000Z"
    assert format_instant(instant, 7) == "2024-03-11T04:19:55.5799558Z"


@given(st.integers(min_value=0, max_value=MAX_INSTANT))
def test_seven_digit_format_parses_back_to_the_same_hundred_nanoseconds(instant):
    assert parse_instant(format_instant(instant, 7)) == instant - instant % 100


@given(st.integers(min_value=0, max_value=MAX_INSTANT))
def test_the_window_sent_always_holds_the_window_asked(instant):
    assert parse_instant(format_instant(instant)) <= instant <= parse_instant(format_instant(instant, round_up=True))


@given(st.text(max_size=40))
def test_any_text_is_an_instant_a_look_back_or_a_clean_error(text):
    try:
        start, end = resolve_window(text, None, now=T0)
    except InputError as exc:
        assert str(exc).startswith("start")
    else:
        assert 0 <= start <= end == T0
