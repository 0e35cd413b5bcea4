# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""iter_csv_devices: a CSV device file read one row at a time, every bad row named by file and line.

The csv_devices lookup tests cover the file formats through the lookup;
these cover the reader itself, above all that it streams.
"""

from __future__ import annotations

import inspect
import itertools
import re

import pytest

from ansible_collections.monoz.link.plugins.plugin_utils._fleet_render import FleetInputError
from ansible_collections.monoz.link.plugins.plugin_utils._fleet_source import iter_csv_devices


def iccid(index: int) -> str:
    return f"89882806660000{index:05d}"


def write(tmp_path, text: str, encoding: str = "utf-8") -> str:
    path = tmp_path / "devices.csv"
    path.write_bytes(text.encode(encoding))
    return str(path)


def test_it_is_a_generator_that_opens_nothing_until_asked(tmp_path):
    rows = iter_csv_devices(str(tmp_path / "not-yet.csv"))
    assert inspect.isgenerator(rows)
    (tmp_path / "not-yet.csv").write_text(f"iccid\n{iccid(1)}\n")
    assert list(rows) == [{"iccid": iccid(1)}]


def test_rows_are_read_one_at_a_time_so_a_bad_row_far_down_is_met_only_when_reached(tmp_path):
    lines = [f"{iccid(index)},site{index}" for index in range(20000)]
    lines[15000] = "not-an-iccid,site"
    rows = iter_csv_devices(write(tmp_path, "iccid,site\n" + "\n".join(lines) + "\n"))
    first = list(itertools.islice(rows, 1000))
    assert first[0] == {"iccid": iccid(0), "site": "site0"} and first[-1]["iccid"] == iccid(999)
    assert len(list(itertools.islice(rows, 14000 - 1000))) == 13000
    with pytest.raises(FleetInputError, match="devices.csv line 15002: iccid must contain digits only"):
        list(rows)


def test_values_are_stripped_strings_and_the_iccid_normalised(tmp_path):
    path = write(tmp_path, f" iccid , apn ,n\n {iccid(1)} , iot.a , 60 \n")
    assert list(iter_csv_devices(path)) == [{"iccid": iccid(1), "apn": "iot.a", "n": "60"}]


def test_blank_lines_and_lines_of_empty_cells_are_skipped_and_do_not_shift_line_numbers(tmp_path):
    path = write(tmp_path, f"iccid,apn\n\n{iccid(1)},a\n  ,  \n\r\n{iccid(2)}\n")
    rows = iter_csv_devices(path)
    assert next(rows) == {"iccid": iccid(1), "apn": "a"}
    with pytest.raises(FleetInputError, match="devices.csv line 6: 1 fields, the header has 2"):
        next(rows)


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    path = write(tmp_path, f"\ufefficcid,apn\r\n{iccid(1)},a\r\n")
    assert list(iter_csv_devices(path)) == [{"iccid": iccid(1), "apn": "a"}]


def test_an_empty_or_header_only_file_yields_nothing(tmp_path):
    assert list(iter_csv_devices(write(tmp_path, ""))) == []
    assert list(iter_csv_devices(write(tmp_path, "iccid,apn\n\n\n"))) == []


@pytest.mark.parametrize("text, message", [
    ("name,apn\nx,y\n", r"devices.csv: no 'iccid' column in the header \['name', 'apn'\]"),
    ("ICCID\n1\n", r"devices.csv: no 'iccid' column in the header \['ICCID'\]"),
    ("iccid,apn, apn\n1,2,3\n", r"devices.csv: empty or repeated column names in the header \['iccid', 'apn', 'apn'\]"),
    ("iccid,\n1,2\n", r"devices.csv: empty or repeated column names in the header \['iccid', ''\]"),
])
def test_a_bad_header_fails_naming_the_file_before_any_row(tmp_path, text, message):
    with pytest.raises(FleetInputError, match=message):
        next(iter_csv_devices(write(tmp_path, text)))


@pytest.mark.parametrize("row, message", [
    (f"{iccid(2)}", "line 3: 1 fields, the header has 2"),
    (f"{iccid(2)},a,b", "line 3: 3 fields, the header has 2"),
    ("8988O,a", "line 3: iccid must contain digits only"),
    (",a", "line 3: iccid"),
    ("1" * 23 + ",a", "line 3: iccid must have at most 22 digits"),
])
def test_a_bad_row_fails_naming_the_file_and_line(tmp_path, row, message):
    path = write(tmp_path, f"iccid,apn\n{iccid(1)},a\n{row}\n")
    rows = iter_csv_devices(path)
    assert next(rows)["iccid"] == iccid(1)
    with pytest.raises(FleetInputError) as caught:
        next(rows)
    assert str(caught.value).startswith(f"{path} {message}")


def test_a_quoted_cell_may_hold_the_delimiter_and_a_newline(tmp_path):
    path = write(tmp_path, f'iccid,msg\n{iccid(1)},"a, b\nc"\n8988O,x\n')
    rows = iter_csv_devices(path)
    assert next(rows) == {"iccid": iccid(1), "msg": "a, b\nc"}
    # Line numbers count the lines of the file, not the records.
    with pytest.raises(FleetInputError, match="line 4: iccid"):
        next(rows)


def test_another_delimiter_and_encoding(tmp_path):
    path = write(tmp_path, f"iccid;name\n{iccid(1)};Zürich\n", encoding="latin-1")
    assert list(iter_csv_devices(path, delimiter=";", encoding="latin-1")) == [{"iccid": iccid(1), "name": "Zürich"}]


@pytest.mark.parametrize("setup, kwargs", [
    (lambda tmp_path: str(tmp_path / "missing.csv"), {}),
    (lambda tmp_path: write(tmp_path, f"iccid,name\n{iccid(1)},Zürich\n", encoding="latin-1"), {}),
    (lambda tmp_path: write(tmp_path, f"iccid\n{iccid(1)}\n"), {"encoding": "no-such-codec"}),
    (str, {}),  # a directory
])
def test_an_unreadable_file_fails_naming_it(tmp_path, setup, kwargs):
    path = setup(tmp_path)
    with pytest.raises(FleetInputError, match="cannot read CSV device file " + re.escape(path)):
        list(iter_csv_devices(path, **kwargs))


def test_an_undecodable_row_far_down_fails_after_the_good_rows(tmp_path):
    path = tmp_path / "devices.csv"
    path.write_bytes(b"iccid,name\n" + b"".join(f"{iccid(i)},x\n".encode() for i in range(5000)) + b"1,\xff\n")
    rows = iter_csv_devices(str(path))
    assert len(list(itertools.islice(rows, 4000))) == 4000
    with pytest.raises(FleetInputError, match="cannot read CSV device file"):
        list(rows)
