# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The device CSV reader of the monoz.link.devices inventory plugin, fuzzed: a clear error or rows, never a traceback."""

from __future__ import annotations

import csv
import io
import re
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.monoz.link.plugins.plugin_utils._device_csv import (
    DeviceCSVError,
    read_device_csv,
    variable_suffix,
)

SAFE_SUFFIX = re.compile(r"^(?:[a-z0-9]+(?:_[a-z0-9]+)*)?$")
cells = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)


@given(st.text(max_size=40))
def test_variable_suffix_is_always_a_safe_variable_name_part(column):
    suffix = variable_suffix(column)
    assert SAFE_SUFFIX.match(suffix), suffix
    assert variable_suffix(suffix) == suffix  # normalising twice changes nothing


def write(rows: list) -> Path:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    handle = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, encoding="utf-8", newline="")
    with handle:
        handle.write(buffer.getvalue())
    return Path(handle.name)


@given(st.lists(cells, min_size=1, max_size=4), st.lists(st.lists(cells, max_size=5), max_size=6))
def test_any_csv_gives_rows_or_an_error_naming_the_file(header, body):
    path = write([header, *body])
    try:
        rows = read_device_csv(str(path))
    except DeviceCSVError as exc:
        assert str(path) in str(exc)
    else:
        assert all(row.iccid.isdigit() and 1 <= len(row.iccid) <= 22 for row in rows)
        assert len({row.iccid for row in rows}) == len(rows)
        assert all("iccid" not in row.values for row in rows)
    finally:
        path.unlink()


@given(st.lists(st.from_regex(r"\A[0-9]{1,22}\Z"), min_size=1, max_size=8, unique=True),
       st.lists(cells, min_size=8, max_size=8))
def test_valid_rows_keep_their_order_lines_and_cells(iccids, names):
    path = write([["ICCID", "Device Name"], *([iccid, name] for iccid, name in zip(iccids, names))])
    try:
        rows = read_device_csv(str(path))
    finally:
        path.unlink()
    assert [row.iccid for row in rows] == [iccid.strip() for iccid in iccids]
    assert [row.values["device_name"] for row in rows] == [name.strip() for name in names[:len(iccids)]]
