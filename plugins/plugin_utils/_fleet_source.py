# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read the devices of a fleet push from a CSV file, one row at a time.

Private to the monoz.link collection: not a public API, it may change without notice.

Shared by the csv_devices lookup (which lists every row) and the fleet_push
role's fleet_push_run action (which reads a batch at a time, so that a fleet
of any size costs the memory of one batch).
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from ansible_collections.monoz.link.plugins.module_utils._downlink_input import DownlinkInputError, normalise_iccid
from ansible_collections.monoz.link.plugins.plugin_utils._fleet_render import FleetInputError


def iter_csv_devices(path: str, delimiter: str = ",", encoding: str = "utf-8-sig") -> Iterator[dict]:
    """Yield one dict per data row of the CSV at ``path``: ``iccid`` (checked) plus the other columns.

    Values are strings with surrounding blanks stripped; blank lines are
    skipped; a header-only file yields nothing.  A bad file or row raises
    ``FleetInputError`` naming the file and line.
    """
    try:
        with open(path, encoding=encoding, newline="") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return
            header = [name.strip() for name in header]
            if "iccid" not in header:
                raise FleetInputError(f"{path}: no 'iccid' column in the header {header}")
            duplicates = sorted({name for name in header if header.count(name) > 1})
            if duplicates or "" in header:
                raise FleetInputError(f"{path}: empty or repeated column names in the header {header}")
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                where = f"{path} line {reader.line_num}"
                if len(row) != len(header):
                    raise FleetInputError(f"{where}: {len(row)} fields, the header has {len(header)}")
                device = {name: cell.strip() for name, cell in zip(header, row)}
                try:
                    device["iccid"] = normalise_iccid(device["iccid"], f"{where}: iccid")
                except DownlinkInputError as exc:
                    raise FleetInputError(str(exc)) from None
                yield device
    except (OSError, UnicodeDecodeError, LookupError, csv.Error) as exc:
        raise FleetInputError(f"cannot read CSV device file {path}: {exc}") from None
