# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the monoz_device_info module does: read device and SIM details, one device or a fleet.

Private to the monoz.link collection: not a public API, it may change without notice.
"""

from __future__ import annotations

import re

from ._api_client import MonozClient
from ._fleet import Operation, error_fields
from ._module_args import module_kwargs
from ._runner import FleetTask, TaskRun, run_task

STATUS_OK = "ok"
STATUS_FAILED = "failed"

# The API's Data keys and the names the module returns them under.
DEVICE_KEYS = {
    "Name": "name",
    "ICCID": "iccid",
    "IMEILock": "imei_lock",
    "ActivationDate": "activation_date",
    "ExpiryDate": "expiry_date",
    "Status": "status",
    "MessageCount": "message_count",
    "DLMessageCount": "dl_message_count",
    "Volume": "volume",
    "CreatedDate": "created_date",
    "UpdatedDate": "updated_date",
}
# "DLMessageCount" -> "DL_Message_Count": a break before an upper-case letter
# that follows a lower-case one or a digit, or that starts a word after an acronym.
_WORD_BREAK = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    return _WORD_BREAK.sub("_", name).lower()


def device_facts(data: dict) -> dict:
    """The API's ``Data`` with snake_case keys: every documented key (None when absent), then any other."""
    device = {name: None for name in DEVICE_KEYS.values()}
    for key, value in data.items():
        device[DEVICE_KEYS.get(key) or snake_case(str(key))] = value
    return device


def device_info_module_kwargs() -> dict:
    """Keyword arguments for AnsibleModule (or ArgumentSpecValidator) of monoz_device_info."""
    return module_kwargs({})


def device_row(iccid: str, status: str, status_code=None, device=None, msg=None) -> dict:
    row = {"iccid": iccid, "status": status, "status_code": status_code, "device": device}
    if msg is not None:
        row["msg"] = msg
    return row


class DeviceInfoOperation(Operation):
    def __init__(self, client) -> None:
        self.client = client

    def perform(self, index: int, target) -> dict:
        outcome = self.client.device_detail(target.iccid)
        return device_row(target.iccid, STATUS_OK, outcome.status_code, device_facts(outcome.data))

    def failure(self, index: int, target, msg: str, error=None) -> dict:
        return device_row(target.iccid, STATUS_FAILED, error_fields(error)[0], msg=msg)

    def redact(self, text: str) -> str:
        return self.client.redact(text)


class DeviceInfoTask(FleetTask):
    statuses = (STATUS_OK, STATUS_FAILED)
    noun = "devices"
    reads_in_check_mode = True

    def operation(self, client, check_mode: bool) -> DeviceInfoOperation:
        return DeviceInfoOperation(client)

    def report_single(self, run: TaskRun, row: dict) -> None:
        if row["status_code"] is not None:
            run.result["status_code"] = row["status_code"]
        if row["status"] == STATUS_FAILED:
            run.fail(row["msg"])
            return
        run.result["device"] = row["device"]


def run_device_info(params: dict, check_mode: bool, client_factory=MonozClient) -> TaskRun:
    """Read the details of every device; never changed, the same in check mode."""
    return run_task(DeviceInfoTask(), params, check_mode, client_factory)
