# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The csv_devices lookup: one device dict per data row, every bad row named by file and line."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleLookupError


@pytest.fixture
def read(load_lookup, tmp_path):
    (tmp_path / "files").mkdir()

    def run(*names, **options):
        variables = {"ansible_search_path": [str(tmp_path)]}
        return load_lookup("csv_devices", tmp_path, variables).run(list(names), variables=variables, **options)

    return run


def write(tmp_path, text: str, name: str = "devices.csv", encoding: str = "utf-8") -> str:
    (tmp_path / "files" / name).write_bytes(text.encode(encoding))
    return name


def test_rows_become_device_dicts_with_every_column_as_a_string(read, tmp_path):
    name = write(tmp_path, "iccid,apn,interval\n8988280666000000001, iot.a ,60\n 8988280666000000002,iot.b,120\n")
    assert read(name) == [
        {"iccid": "8988280666000000001", "apn": "iot.a", "interval": "60"},
        {"iccid": "8988280666000000002", "apn": "iot.b", "interval": "120"},
    ]


def test_a_byte_order_mark_and_blank_lines_are_ignored(read, tmp_path):
    name = write(tmp_path, "\ufefficcid,site\r\n\r\n8988280666000000001,s1\r\n,\r\n")
    assert read(name) == [{"iccid": "8988280666000000001", "site": "s1"}]


def test_a_header_only_file_is_an_empty_fleet(read, tmp_path):
    assert read(write(tmp_path, "iccid,apn\n")) == []
    assert read(write(tmp_path, "", name="empty.csv")) == []


def test_several_files_are_read_in_order(read, tmp_path):
    first = write(tmp_path, "iccid\n8988280666000000002\n", name="a.csv")
    second = write(tmp_path, "iccid\n8988280666000000001\n", name="b.csv")
    assert [row["iccid"] for row in read(first, second)] == ["8988280666000000002", "8988280666000000001"]


def test_another_delimiter_and_encoding(read, tmp_path):
    name = write(tmp_path, "iccid;name\n8988280666000000001;Zürich\n", encoding="latin-1")
    assert read(name, delimiter=";", encoding="latin-1") == [{"iccid": "8988280666000000001", "name": "Zürich"}]


@pytest.mark.parametrize("text, message", [
    ("name,apn\nx,y\n", r"no 'iccid' column in the header \['name', 'apn'\]"),
    ("iccid,apn,apn\n1,2,3\n", r"empty or repeated column names in the header"),
    ("iccid,,apn\n1,2,3\n", r"empty or repeated column names in the header"),
    ("iccid,apn\n8988280666000000001,a\n8988280666000000002\n", r"devices.csv line 3: 1 fields, the header has 2"),
    ("iccid\n8988280666000000001\n89882806660000000O2\n", r"devices.csv line 3: iccid must contain digits only"),
    ("iccid\n" + "1" * 23 + "\n", r"devices.csv line 2: iccid must have at most 22 digits"),
])
def test_a_bad_file_fails_naming_the_file_and_line(read, tmp_path, text, message):
    with pytest.raises(AnsibleLookupError, match=message):
        read(write(tmp_path, text))


def test_undecodable_text_fails_naming_the_file(read, tmp_path):
    name = write(tmp_path, "iccid,name\n8988280666000000001,Zürich\n", encoding="latin-1")
    with pytest.raises(AnsibleLookupError, match="cannot read CSV device file .*devices.csv"):
        read(name)


def test_a_missing_file_fails_naming_it(read):
    with pytest.raises(AnsibleLookupError, match="CSV device file 'nope.csv' not found"):
        read("nope.csv")
