# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read a CSV of devices (the console's export or your own) for the monoz.link.devices inventory plugin.

Private to the monoz.link collection: not a public API, it may change without notice.

One job: turn the file into ``DeviceRow``s, or raise ``DeviceCSVError`` naming
the file and, for a bad row, its line.  Column names become the suffixes of
``monoz_<column>`` host variables, so they are normalised to safe variable
names here (``Device Name`` -> ``device_name``, ``IMEILock`` -> ``imei_lock``)
and the ``iccid`` column is found whatever its spelling (``ICCID`` in the
console's export).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field

from ansible_collections.monoz.link.plugins.module_utils._errors import InputError
from ansible_collections.monoz.link.plugins.module_utils._targets import normalise_iccid

# Also drops the byte order mark Excel writes.
ENCODING = "utf-8-sig"

# A word break before an upper-case letter that follows a lower-case one or a
# digit, or that starts a word after an acronym: "DLMessageCount" -> "DL_Message_Count".
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_NAME = re.compile(r"[^a-z0-9]+")


class DeviceCSVError(ValueError):
    """The CSV cannot become an inventory; the message names the file (and line)."""


@dataclass(frozen=True)
class DeviceRow:
    """One device of the CSV: its line, its ICCID and its other columns by normalised name."""

    line: int
    iccid: str
    values: dict = field(default_factory=dict)


def variable_suffix(column: str) -> str:
    """The column name as the part of a variable name after ``monoz_``; "" when nothing is left."""
    name = _WORD_BREAK.sub("_", column.strip())
    return _NOT_NAME.sub("_", name.lower()).strip("_")


def _header(path: str, header: list) -> list:
    """The normalised names of the columns, checked: one ``iccid``, none empty or repeated."""
    names = []
    seen: dict = {}
    for position, column in enumerate(header, start=1):
        name = variable_suffix(column)
        if not name:
            raise DeviceCSVError(
                f"{path} line 1: column {position} ({column!r}) has no name usable as a variable name"
            )
        if name in seen:
            raise DeviceCSVError(
                f"{path} line 1: columns {seen[name]!r} and {column!r} both become the variable monoz_{name}"
            )
        seen[name] = column
        names.append(name)
    if "iccid" not in names:
        raise DeviceCSVError(f"{path}: no iccid column in the header {[column.strip() for column in header]}")
    return names


def read_device_csv(path: str) -> list:
    """Every device of the CSV at ``path``, in file order; blank lines are skipped."""
    try:
        with open(path, encoding=ENCODING, newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise DeviceCSVError(f"{path} is empty: it needs a header row with an iccid column")
            names = _header(path, header)
            rows = []
            lines_by_iccid: dict = {}
            for cells in reader:
                if not any(cell.strip() for cell in cells):
                    continue
                line = reader.line_num
                if len(cells) != len(names):
                    raise DeviceCSVError(f"{path} line {line}: {len(cells)} fields, the header has {len(names)}")
                values = {name: cell.strip() for name, cell in zip(names, cells)}
                try:
                    iccid = normalise_iccid(values.pop("iccid"), f"{path} line {line}: iccid")
                except InputError as exc:
                    raise DeviceCSVError(str(exc)) from None
                if iccid in lines_by_iccid:
                    raise DeviceCSVError(
                        f"{path} line {line}: ICCID {iccid} is already on line {lines_by_iccid[iccid]}"
                    )
                lines_by_iccid[iccid] = line
                rows.append(DeviceRow(line, iccid, values))
            return rows
    except FileNotFoundError:
        raise DeviceCSVError(f"device CSV {path} not found") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DeviceCSVError(f"cannot read device CSV {path}: {exc}") from None
