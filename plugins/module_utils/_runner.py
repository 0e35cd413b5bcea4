# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What every Monoz Link module does around its requests, independent of how it is run.

Private to the monoz.link collection: not a public API, it may change without notice.

``run_task`` takes the option values AnsibleModule validated and a ``Task``
(one module's work) and returns the task result: check the connection
options, let the task validate all of its input, open one pooled client,
let the task work, close the client, report retries.  It never raises for
bad input and knows nothing of AnsibleModule, so a module's main() and an
action plugin on the controller share every line of behaviour.

``FleetTask`` is the task of a module that works device by device on the
fleet engine (``_fleet.py``): one device through ``iccid`` or a fleet
through ``devices``, results and a summary, the task failed when any device
failed, and a 401 that stopped the fleet said so.
"""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import urlsplit

from ._api_client import MonozAPIError, MonozClient, MonozError, status_phrase
from ._errors import InputError, TaskError
from ._fleet import STATUS_FAILED, FleetRun, summarise
from ._rate_limiter import StartPacer
from ._targets import parse_targets

MAX_CONCURRENCY = 256
MAX_RETRIES = 20
# Retries reported one by one; beyond this, a tally.
MAX_RETRY_WARNINGS = 20


class TaskRun:
    """The result of one task plus the warnings to show with it."""

    def __init__(self) -> None:
        self.result: dict = {"changed": False}
        self.warnings: list[str] = []

    def fail(self, msg: str) -> TaskRun:
        self.result["failed"] = True
        self.result["msg"] = msg
        return self


def check_connection_options(params: dict) -> None:
    """Check (and normalise, in ``params``) the options every module shares; raise InputError."""
    for name in ("org_id", "api_key"):
        value = params.get(name)
        if value is None or not str(value).strip():
            env = {"org_id": "MONOZ_ORG_ID", "api_key": "MONOZ_API_KEY"}[name]
            raise InputError(f"{name} is required: set the option or the {env} environment variable")
    # A key read from a file often ends in a newline; HTTP headers cannot
    # carry it, and requests would quote the whole key in its error.
    params["api_key"] = params["api_key"].strip()
    if any(ord(char) < 32 or ord(char) == 127 for char in params["api_key"]):
        raise InputError("api_key must not contain control characters (the value is not shown)")
    if any(0xD800 <= ord(char) <= 0xDFFF for char in params["org_id"]):
        raise InputError("org_id is not valid UTF-8 text (it holds a lone surrogate)")
    url = urlsplit(params["api_url"] or "")
    if url.scheme not in ("http", "https") or not url.netloc:
        raise InputError(f"api_url must be an http:// or https:// URL, got {params['api_url']!r}")
    if not params["timeout"] > 0:
        raise InputError(f"timeout must be a positive number of seconds, got {params['timeout']!r}")
    if not 0 <= params["retries"] <= MAX_RETRIES:
        raise InputError(f"retries must be between 0 and {MAX_RETRIES}, got {params['retries']!r}")
    # The fleet options, for the modules that have them.
    if "concurrency" in params and not 1 <= params["concurrency"] <= MAX_CONCURRENCY:
        raise InputError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {params['concurrency']!r}")
    if "rate_limit" in params and not params["rate_limit"] >= 0:
        raise InputError(f"rate_limit must be 0 (unlimited) or a positive number, got {params['rate_limit']!r}")


class RetryLog:
    """Collects retries from worker threads; the first few are reported one by one, then a tally."""

    def __init__(self, retries: int) -> None:
        self.retries = retries
        self.events: list[str] = []
        self.reasons: Counter = Counter()
        self._lock = threading.Lock()

    def __call__(self, subject: str, attempt: int, reason: str, delay: float) -> None:
        with self._lock:
            self.reasons[reason] += 1
            if len(self.events) < MAX_RETRY_WARNINGS:
                self.events.append(
                    f"{subject}: {reason}, retrying in {delay:.1f}s"
                    f" ({self.retries - attempt + 1} retries remaining)"
                )

    def warnings(self) -> list:
        warnings = list(self.events)
        total = sum(self.reasons.values())
        if len(self.events) < total:
            tally = ", ".join(f"{count} after {reason}" for reason, count in self.reasons.most_common())
            warnings.append(f"{total} requests were retried: {tally}")
        return warnings


class Task:
    """One module's work.  ``run_task`` calls ``prepare``, then ``execute`` with a client (or None)."""

    # Check mode sends reads (never writes): a task that reads needs its client then too.
    reads_in_check_mode = False

    def prepare(self, params: dict, run: TaskRun) -> None:
        """Validate every option and device; raise InputError (or another TaskError) naming the problem."""
        raise NotImplementedError

    def pool_size(self, params: dict) -> int:
        return 1

    def execute(self, run: TaskRun, client, check_mode: bool) -> None:
        """Do the work and fill ``run``; ``client`` is None in check mode unless the task reads."""
        raise NotImplementedError


def open_client(params: dict, client_factory, pool_size: int, retry_log: RetryLog):
    rate = params.get("rate_limit") or 0
    pacer = StartPacer(rate) if rate > 0 else None
    return client_factory(
        api_url=params["api_url"],
        org_id=params["org_id"],
        api_key=params["api_key"],
        timeout=params["timeout"],
        validate_certs=params["validate_certs"],
        retries=params["retries"],
        pool_size=pool_size,
        before_attempt=pacer.wait if pacer else None,
        on_retry=retry_log,
    )


def run_task(task: Task, params: dict, check_mode: bool, client_factory=MonozClient) -> TaskRun:
    """Validate everything, then work (or plan, in check mode); never raises for bad input."""
    run = TaskRun()
    # A copy: normalising (say, stripping the key) must not change the
    # caller's params, which Ansible masks and echoes as "invocation".
    params = dict(params)
    try:
        check_connection_options(params)
        task.prepare(params, run)
    except TaskError as exc:
        return run.fail(str(exc))
    retry_log = RetryLog(params["retries"])
    client = None
    if not check_mode or task.reads_in_check_mode:
        client = open_client(params, client_factory, task.pool_size(params), retry_log)
    try:
        task.execute(run, client, check_mode)
    except TaskError as exc:
        run.fail(str(exc))
    except MonozError as exc:
        # A task of one request (a fleet task's errors stay with their devices).
        if isinstance(exc, MonozAPIError):
            run.result["status_code"] = exc.status_code
        run.fail(exc.message)
    finally:
        if client is not None:
            client.close()
    run.warnings.extend(retry_log.warnings())
    return run


class FleetTask(Task):
    """A module that works device by device: one ``iccid``, or a fleet of ``devices``.

    Subclasses set ``statuses`` (the summary's keys after ``total``, with
    ``failed`` among them) and ``noun`` (what failed, in the plural), and
    write ``operation`` (the fleet engine's operation), ``changed`` and
    ``report_single`` (the result of a single-device task from its one
    device result); ``report_fleet`` fills ``results`` and ``summary``.
    """

    statuses: tuple = ()
    noun = "devices"
    # Keys a dict in ``devices`` may carry; None: any, only ``iccid`` used.
    device_keys = None
    # Refuse a task whose iccid and devices are both null.
    targets_required = True

    def __init__(self) -> None:
        self.params: dict = {}
        self.single = False
        self.items: list = []

    def prepare(self, params: dict, run: TaskRun) -> None:
        self.params = params
        self.single = params.get("iccid") is not None
        if self.targets_required and not self.single and params.get("devices") is None:
            # The argument spec lets "iccid: null" through (the key is there);
            # a template that rendered nothing must not pass as an empty fleet.
            raise InputError("iccid or devices is required, but both are null")
        self.items = self.build_items(params)

    def build_items(self, params: dict) -> list:
        """The work items, each with an ``iccid``, in input order."""
        return parse_targets(params, self.device_keys)

    def pool_size(self, params: dict) -> int:
        return 1 if self.single else params["concurrency"]

    def operation(self, client, check_mode: bool):
        raise NotImplementedError

    def fleet(self, client, check_mode: bool) -> FleetRun:
        return FleetRun(self.items, self.operation(client, check_mode), self.params.get("concurrency", 1))

    def execute(self, run: TaskRun, client, check_mode: bool) -> None:
        fleet = self.fleet(client, check_mode)
        results = fleet.run() if client is not None else fleet.plan()
        if self.single:
            self.report_single(run, results[0])
        else:
            self.report_fleet(run, results, fleet)
        self.finish(run, fleet)

    def changed(self, summary: dict) -> bool:
        return False

    def report_single(self, run: TaskRun, row: dict) -> None:
        raise NotImplementedError

    def failure_detail(self, summary: dict) -> str:
        """What else happened, for the message of a failed fleet: ``2 sent``."""
        return ", ".join(f"{summary[status]} {status}" for status in self.statuses
                         if status != STATUS_FAILED and summary[status])

    def report_fleet(self, run: TaskRun, results: list, fleet: FleetRun) -> None:
        summary = summarise(results, self.statuses)
        run.result.update(changed=self.changed(summary), results=results, summary=summary)
        if summary[STATUS_FAILED]:
            first = next(result for result in results if result["status"] == STATUS_FAILED)
            detail = self.failure_detail(summary)
            run.fail(
                f"{summary[STATUS_FAILED]} of {summary['total']} {self.noun} failed"
                + (f" ({detail})" if detail else "")
                + f"; first failure: {first['msg']}"
            )
        if fleet.auth_failure is not None:
            run.result["msg"] = (
                f"the batch stopped at HTTP {status_phrase(401)}: {fleet.auth_failure.message};"
                f" {summary[STATUS_FAILED]} of {summary['total']} {self.noun} failed or were not attempted"
            )

    def finish(self, run: TaskRun, fleet: FleetRun) -> None:
        """Anything to add once the result is built (warnings, say)."""
