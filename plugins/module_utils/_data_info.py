# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the monoz_data_info module does: read the uplink history of a time window.

Private to the monoz.link collection: not a public API, it may change without notice.

One request per task (``RawData`` or ``FailedData`` take a window, not a
device), then the records are narrowed to the window asked for and to the
devices named, if any, and sorted oldest first: the API promises no order.
"""

from __future__ import annotations

from ._api_client import MonozClient
from ._errors import InputError
from ._module_args import module_kwargs
from ._runner import Task, TaskRun, run_task
from ._targets import parse_targets
from ._time_window import NS_PER_SECOND, format_instant, now_ns, parse_instant, resolve_window

KINDS = ("raw", "failed")
# The API keeps uplink data for 1 to 3 days, depending on the plan.
RETENTION_NS = 72 * 3600 * NS_PER_SECOND


def data_info_module_kwargs() -> dict:
    """Keyword arguments for AnsibleModule (or ArgumentSpecValidator) of monoz_data_info."""
    return module_kwargs({
        "kind": {"type": "str", "default": "raw", "choices": list(KINDS)},
        "start": {"type": "str", "required": True},
        "end": {"type": "str"},
    }, fleet=False, targets_required=False)


def iccid_from_topic(topic, org_id: str) -> str | None:
    """The ICCID level of an uplink topic ``[<level1>/]<ORG>/<ICCID>[/<level4>]``, or None."""
    if not isinstance(topic, str):
        return None
    levels = topic.split("/")
    wanted = org_id.casefold()
    for position, level in enumerate(levels[:-1]):
        if level.casefold() == wanted:
            candidate = levels[position + 1]
            if candidate.isascii() and candidate.isdigit():
                return candidate
    return None


def record_facts(raw: dict, org_id: str) -> dict:
    """One API record as the module returns it; an ICCID left null is taken from the topic."""
    iccid = raw.get("ICCID")
    if iccid in (None, ""):
        iccid = iccid_from_topic(raw.get("Topic"), org_id)
    elif not isinstance(iccid, str):
        iccid = str(iccid)
    return {"timestamp": raw.get("Timestamp"), "iccid": iccid, "topic": raw.get("Topic"), "payload": raw.get("Payload")}


class DataInfoTask(Task):
    reads_in_check_mode = True

    def __init__(self, now=None) -> None:
        self.now = now
        self.params: dict = {}
        self.window = (0, 0)
        self.only = None

    def prepare(self, params: dict, run: TaskRun) -> None:
        self.params = params
        kind = params.get("kind") or "raw"
        if kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
        params["kind"] = kind
        targets = parse_targets(params)
        if params.get("iccid") is not None or params.get("devices") is not None:
            self.only = {target.iccid for target in targets}
        now = now_ns() if self.now is None else self.now
        self.window = resolve_window(params.get("start"), params.get("end"), now)
        if self.window[0] < now - RETENTION_NS:
            run.warnings.append(
                f"start {format_instant(self.window[0])} is more than 72 hours ago; the API keeps uplink data"
                " for 1 to 3 days depending on the plan, so older records may be gone"
            )

    def execute(self, run: TaskRun, client, check_mode: bool) -> None:
        start_ns, end_ns = self.window
        # Milliseconds on the wire, as the vendor's examples: the window is
        # widened to whole milliseconds, then narrowed again below.
        outcome = client.data(self.params["kind"], format_instant(start_ns), format_instant(end_ns, round_up=True))
        org_id = self.params["org_id"]
        dated = []
        undated = []
        for raw in outcome.data:
            record = record_facts(raw, org_id)
            if self.only is not None and record["iccid"] not in self.only:
                continue
            instant = parse_instant(record["timestamp"]) if isinstance(record["timestamp"], str) else None
            if instant is None:
                undated.append(record)
            elif start_ns <= instant <= end_ns:
                dated.append((instant, record))
        # Stable: records of one instant keep the API's order.
        dated.sort(key=lambda pair: pair[0])
        records = undated + [record for _instant, record in dated]
        if undated:
            run.warnings.append(
                f"{len(undated)} record(s) have no ISO 8601 timestamp; they come first in records"
            )
        run.result.update(
            changed=False,
            records=records,
            count=len(records),
            newest=dated[-1][1]["timestamp"] if dated else None,
            window={"start": format_instant(start_ns, 7), "end": format_instant(end_ns, 7)},
        )


def run_data_info(params: dict, check_mode: bool, client_factory=MonozClient, now=None) -> TaskRun:
    """Read the records of the window; never changed, the same in check mode."""
    return run_task(DataInfoTask(now), params, check_mode, client_factory)
