# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the monoz_downlink module does, independent of how it is run.

Private to the monoz.link collection: not a public API, it may change without notice.

``run_downlink`` takes the validated option values and returns the task
result.  It knows nothing of AnsibleModule, so the module and (later) an
action plugin running on the controller share every line of behaviour.
"""

from __future__ import annotations

import threading
from collections import Counter
from urllib.parse import urlsplit

from ._api_client import MonozAPIError, MonozClient, MonozError, status_phrase
from ._batch import STATUS_FAILED, BatchRun, summarise
from ._downlink_input import DownlinkInputError, build_batch, build_downlink, downlink_digest
from ._journal import Journal, JournalError
from ._rate_limiter import StartPacer

MAX_CONCURRENCY = 256
MAX_RETRIES = 20


class DownlinkRun:
    """The result of one task plus the warnings to show with it."""

    def __init__(self) -> None:
        self.result: dict = {"changed": False}
        self.warnings: list[str] = []

    def fail(self, msg: str) -> DownlinkRun:
        self.result["failed"] = True
        self.result["msg"] = msg
        return self


def _check_connection_options(params: dict) -> None:
    for name in ("org_id", "api_key"):
        value = params.get(name)
        if value is None or not str(value).strip():
            env = {"org_id": "MONOZ_ORG_ID", "api_key": "MONOZ_API_KEY"}[name]
            raise DownlinkInputError(f"{name} is required: set the option or the {env} environment variable")
    # A key read from a file often ends in a newline; HTTP headers cannot
    # carry it, and requests would quote the whole key in its error.
    params["api_key"] = params["api_key"].strip()
    if any(ord(char) < 32 or ord(char) == 127 for char in params["api_key"]):
        raise DownlinkInputError("api_key must not contain control characters (the value is not shown)")
    if any(0xD800 <= ord(char) <= 0xDFFF for char in params["org_id"]):
        raise DownlinkInputError("org_id is not valid UTF-8 text (it holds a lone surrogate)")
    url = urlsplit(params["api_url"] or "")
    if url.scheme not in ("http", "https") or not url.netloc:
        raise DownlinkInputError(f"api_url must be an http:// or https:// URL, got {params['api_url']!r}")
    if not params["timeout"] > 0:
        raise DownlinkInputError(f"timeout must be a positive number of seconds, got {params['timeout']!r}")
    if not 0 <= params["retries"] <= MAX_RETRIES:
        raise DownlinkInputError(f"retries must be between 0 and {MAX_RETRIES}, got {params['retries']!r}")
    if not 1 <= params["concurrency"] <= MAX_CONCURRENCY:
        raise DownlinkInputError(f"concurrency must be between 1 and {MAX_CONCURRENCY}, got {params['concurrency']!r}")
    if not params["rate_limit"] >= 0:
        raise DownlinkInputError(f"rate_limit must be 0 (unlimited) or a positive number, got {params['rate_limit']!r}")


class _RetryLog:
    """Collects retries from worker threads; single sends report each, batches a tally."""

    def __init__(self, retries: int) -> None:
        self.retries = retries
        self.events: list[str] = []
        self.reasons: Counter = Counter()
        self._lock = threading.Lock()

    def __call__(self, iccid: str, attempt: int, reason: str, delay: float) -> None:
        with self._lock:
            self.reasons[reason] += 1
            if len(self.events) < 20:
                self.events.append(
                    f"ICCID {iccid}: {reason}, retrying in {delay:.1f}s"
                    f" ({self.retries - attempt + 1} retries remaining)"
                )


def run_downlink(params: dict, check_mode: bool, client_factory=MonozClient) -> DownlinkRun:
    """Validate everything, then send (or plan, in check mode); never raises for bad input."""
    run = DownlinkRun()
    # A copy: normalising (say, stripping the key) must not change the
    # caller's params, which Ansible masks and echoes as "invocation".
    params = dict(params)
    try:
        _check_connection_options(params)
        org_id = params["org_id"]
        if params.get("iccid") is not None:
            downlinks = [build_downlink(
                org_id, params["iccid"], params.get("payload"), params.get("format"),
                params.get("topic"), params.get("qos"), params.get("retain"),
            )]
        else:
            defaults = {key: params.get(key) for key in ("payload", "format", "topic", "qos", "retain")}
            downlinks = build_batch(org_id, params.get("devices"), defaults)
        journal = Journal(params["journal"]).load() if params.get("journal") else None
    except (DownlinkInputError, JournalError) as exc:
        return run.fail(str(exc))
    if journal is not None and journal.ignored_lines:
        run.warnings.append(
            f"journal {journal.path}: ignored {journal.ignored_lines} unreadable line(s), e.g. a line torn by a crash"
        )
    digests = [downlink_digest(org_id, d.body) for d in downlinks] if journal is not None else None

    retry_log = _RetryLog(params["retries"])
    pacer = StartPacer(params["rate_limit"]) if params["rate_limit"] > 0 else None
    single = params.get("iccid") is not None
    client = None
    if not check_mode:
        client = client_factory(
            api_url=params["api_url"],
            org_id=org_id,
            api_key=params["api_key"],
            timeout=params["timeout"],
            validate_certs=params["validate_certs"],
            retries=params["retries"],
            pool_size=1 if single else params["concurrency"],
            before_attempt=pacer.wait if pacer else None,
            on_retry=retry_log,
        )
    try:
        if journal is not None and client is not None:
            journal.open_for_append()
        try:
            if single:
                _run_single(run, client, downlinks[0], digests, journal)
            else:
                _run_batch(run, client, downlinks, digests, journal, params["concurrency"])
        finally:
            if journal is not None:
                journal.close()
    except JournalError as exc:
        return run.fail(str(exc))
    finally:
        if client is not None:
            client.close()
    run.warnings.extend(retry_log.events)
    if len(retry_log.events) < sum(retry_log.reasons.values()):
        tally = ", ".join(f"{count} after {reason}" for reason, count in retry_log.reasons.most_common())
        run.warnings.append(f"{sum(retry_log.reasons.values())} requests were retried: {tally}")
    return run


def _run_single(run: DownlinkRun, client, downlink, digests, journal) -> None:
    result = run.result
    result["request"] = downlink.body
    result["attempts"] = 0
    if digests is not None and digests[0] in journal:
        result["msg"] = f"identical message already delivered to ICCID {downlink.iccid} (journal {journal.path})"
        return
    if client is None:  # check mode: a real run would publish
        result["changed"] = True
        return
    try:
        outcome = client.publish(downlink.body)
    except MonozAPIError as exc:
        result.update(status_code=exc.status_code, response=exc.result.response, attempts=exc.attempts)
        run.fail(exc.message)
        return
    except MonozError as exc:
        result["attempts"] = exc.attempts
        run.fail(exc.message)
        return
    result.update(changed=True, status_code=outcome.status_code, response=outcome.response, attempts=outcome.attempts)
    if journal is not None:
        try:
            journal.record(digests[0], client.org_id, downlink.iccid, outcome.status_code)
        except OSError as exc:
            run.warnings.append(f"message delivered but not journaled: {exc}")


def _run_batch(run: DownlinkRun, client, downlinks, digests, journal, concurrency: int) -> None:
    batch = BatchRun(client, downlinks, digests, journal, concurrency)
    results = batch.plan() if client is None else batch.run()
    summary = summarise(results)
    run.result.update(
        changed=bool(summary["sent"] or summary["would_send"]),
        results=results,
        summary=summary,
    )
    run.warnings.extend(f"delivered but not journaled: {error}" for error in batch.journal_errors[:20])
    if summary["failed"]:
        first = next(result for result in results if result["status"] == STATUS_FAILED)
        run.fail(
            f"{summary['failed']} of {summary['total']} downlinks failed"
            f" ({summary['sent']} sent, {summary['skipped']} skipped); first failure: {first['msg']}"
        )
    if batch.auth_failure is not None:
        run.result["msg"] = (
            f"the batch stopped at HTTP {status_phrase(401)}: {batch.auth_failure.message};"
            f" {summary['failed']} of {summary['total']} downlinks failed or were not attempted"
        )
