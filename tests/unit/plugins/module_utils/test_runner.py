# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""run_task, the skeleton every module's runner shares: validate, open one client, work, close, report."""

from __future__ import annotations

import pytest

from ansible_collections.monoz.link.plugins.module_utils._errors import InputError, TaskError
from ansible_collections.monoz.link.plugins.module_utils._runner import RetryLog, Task, check_connection_options, run_task
from ansible_collections.monoz.link.tests.unit.fakes import API_KEY, API_URL, ORG_ID


def params(**overrides) -> dict:
    values = {"org_id": ORG_ID, "api_key": API_KEY, "api_url": API_URL, "timeout": 30.0, "validate_certs": True,
              "retries": 3}
    values.update(overrides)
    return values


class FakeClient:
    def __init__(self, **kwargs) -> None:
        self.kwargs = kwargs
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Factory:
    def __init__(self) -> None:
        self.clients: list = []

    def __call__(self, **kwargs) -> FakeClient:
        client = FakeClient(**kwargs)
        self.clients.append(client)
        return client


class Recorder(Task):
    def __init__(self, reads=False, prepare_error=None, execute_error=None) -> None:
        self.reads_in_check_mode = reads
        self.prepare_error = prepare_error
        self.execute_error = execute_error
        self.executed_with = "never"

    def prepare(self, params, run):
        if self.prepare_error:
            raise self.prepare_error

    def execute(self, run, client, check_mode):
        self.executed_with = client
        if self.execute_error:
            raise self.execute_error
        run.result["done"] = True


def test_a_task_runs_with_one_client_that_is_closed_afterwards():
    factory = Factory()
    task = Recorder()
    run = run_task(task, params(), False, factory)
    (client,) = factory.clients
    assert task.executed_with is client and client.closed
    assert run.result == {"changed": False, "done": True}
    assert client.kwargs["pool_size"] == 1 and client.kwargs["before_attempt"] is None


def test_check_mode_gives_a_writing_task_no_client():
    factory = Factory()
    task = Recorder(reads=False)
    run_task(task, params(), True, factory)
    assert factory.clients == [] and task.executed_with is None


def test_check_mode_gives_a_reading_task_its_client():
    factory = Factory()
    task = Recorder(reads=True)
    run_task(task, params(), True, factory)
    assert len(factory.clients) == 1 and task.executed_with is factory.clients[0]


def test_an_input_error_in_prepare_fails_before_any_client():
    factory = Factory()
    task = Recorder(prepare_error=InputError("devices[3] (ICCID 1x): iccid must contain digits only"))
    run = run_task(task, params(), False, factory)
    assert run.result == {"changed": False, "failed": True,
                          "msg": "devices[3] (ICCID 1x): iccid must contain digits only"}
    assert factory.clients == [] and task.executed_with == "never"


def test_a_task_error_while_working_fails_the_task_and_still_closes_the_client():
    factory = Factory()
    run = run_task(Recorder(execute_error=TaskError("journal j: disk full")), params(), False, factory)
    assert run.result["failed"] is True and run.result["msg"] == "journal j: disk full"
    assert factory.clients[0].closed


def test_the_callers_params_are_not_changed():
    given = params(api_key=f" {API_KEY}\n")
    factory = Factory()
    run_task(Recorder(), given, False, factory)
    assert given["api_key"] == f" {API_KEY}\n"
    assert factory.clients[0].kwargs["api_key"] == API_KEY


def test_rate_limit_gives_the_client_a_pacer():
    factory = Factory()
    run_task(Recorder(), params(rate_limit=5.0, concurrency=8), False, factory)
    assert callable(factory.clients[0].kwargs["before_attempt"])


@pytest.mark.parametrize("overrides, option", [
    ({"org_id": " "}, "org_id"), ({"api_key": None}, "api_key"), ({"api_url": "ftp://x"}, "api_url"),
    ({"timeout": 0}, "timeout"), ({"retries": 21}, "retries"), ({"concurrency": 0}, "concurrency"),
    ({"rate_limit": -1.0}, "rate_limit"),
])
def test_connection_and_fleet_options_are_checked(overrides, option):
    with pytest.raises(InputError) as info:
        check_connection_options(params(**overrides))
    assert str(info.value).startswith(option)


def test_a_module_without_fleet_options_passes_the_check():
    values = params()
    check_connection_options(values)
    assert "concurrency" not in values


def test_retry_log_reports_twenty_then_a_tally():
    log = RetryLog(3)
    for number in range(25):
        log(f"ICCID {number}", 1, "HTTP 503 Service Unavailable", 0.5)
    log("RawData", 1, "connection error", 0.5)
    warnings = log.warnings()
    assert len(warnings) == 21
    assert warnings[0] == "ICCID 0: HTTP 503 Service Unavailable, retrying in 0.5s (3 retries remaining)"
    assert warnings[-1] == "26 requests were retried: 25 after HTTP 503 Service Unavailable, 1 after connection error"


def test_a_client_error_of_a_one_request_task_fails_it_with_status_and_message():
    from ansible_collections.monoz.link.plugins.module_utils._api_client import ApiResult, MonozAPIError
    error = MonozAPIError("HTTP 400 Bad Request for RawData: bad StartTime", ApiResult(400, {"Message": "bad"}, 1))
    factory = Factory()
    run = run_task(Recorder(reads=True, execute_error=error), params(), True, factory)
    assert run.result == {"changed": False, "failed": True, "status_code": 400,
                          "msg": "HTTP 400 Bad Request for RawData: bad StartTime"}
    assert factory.clients[0].closed
