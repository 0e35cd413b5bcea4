# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""HTTP client for the Monoz Link API.

Private to the monoz.link collection: not a public API, it may change without notice.

One job: send one API request over a pooled keep-alive connection, retry
exactly the transient faults, and turn every other outcome into a typed
exception.  ``call`` does that for any endpoint; ``publish``, ``device_detail``,
``sim_enabled``, ``set_sim_enabled``, ``reset_sim`` and ``data`` name the
endpoints of API.md and check the shape of what a read returns.  It never
calls ``fail_json``; the caller decides how to report.
"""

from __future__ import annotations

import hashlib
import http
import json
import math
import os
import random
import re
import threading
import time
import traceback
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from urllib.parse import quote

REQUESTS_IMPORT_ERROR: str | None
try:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.models import PreparedRequest
except ImportError:  # pragma: no cover - exercised through missing_required_lib
    HAS_REQUESTS = False
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_REQUESTS = True
    REQUESTS_IMPORT_ERROR = None

DEFAULT_API_URL = "https://link.monoz.io/api/v1"

# Statuses that say "the request did not take effect, try again later".
# 500 is deliberately absent: the vendor documents it as a described server
# error, and a retry after a 500 may publish a downlink (or reset a SIM) twice.
RETRY_STATUSES = frozenset((429, 502, 503, 504))

# Back-off: full jitter over an exponential ceiling (AWS architecture blog
# "Exponential Backoff And Jitter"), so a fleet of workers that failed
# together does not retry together.
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
# A Retry-After header is honoured but clamped: a misbehaving proxy saying
# "come back in a day" must not hang a playbook.
RETRY_AFTER_MAX_SECONDS = 120.0

# Keep error messages readable when a proxy answers with a whole HTML page.
BODY_SNIPPET_CHARS = 200

# Requests prepared once per method and URL, per session; URLs with an ICCID
# in the path (reads) vary, so the store is bounded.
MAX_PREPARED_URLS = 64

# What an HTTP header value may hold (RFC 9110 5.5, as requests checks it).
# Checked here, with fullmatch: requests releases before 2.33 let a value
# ending in a newline through to http.client, whose error quotes the value.
_HEADER_VALUE = re.compile(r"[^\s][^\r\n\x00]*|")


class MonozError(Exception):
    """Base of every error raised by the client."""

    def __init__(self, message: str, attempts: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.attempts = attempts


class MonozTransportError(MonozError):
    """No usable HTTP response: connection failure, timeout, redirect, broken body."""


# Endpoints of the data reads, by the module's ``kind``.
DATA_ENDPOINTS = {"raw": "RawData", "failed": "FailedData"}


@dataclass
class ApiResult:
    """Outcome of one request: the last HTTP status, the API's body, attempts made.

    ``data`` is what a read returns, checked by the endpoint's method (the
    ``Data`` object of a detail, the ``Enabled`` boolean, the list of records).
    """

    status_code: int
    response: dict = field(default_factory=dict)
    attempts: int = 1
    data: object = None


# The name from when the client knew one endpoint.
PublishResult = ApiResult


class MonozAPIError(MonozError):
    """The API answered with a status other than 200."""

    def __init__(self, message: str, result: ApiResult) -> None:
        super().__init__(message, attempts=result.attempts)
        self.result = result

    @property
    def status_code(self) -> int:
        return self.result.status_code


class MonozAuthError(MonozAPIError):
    """HTTP 401: the key is wrong for the org, so it is wrong for every device."""


class MonozResponseError(MonozAPIError):
    """HTTP 200, but the body lacks what the endpoint documents (``Data`` of the wrong shape)."""


def _ca_bundle_from_environment():
    """What requests would verify against with trust_env: a bundle from the environment, or its default."""
    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True


class PooledSession:
    """The two methods of ``requests.Session`` the client uses, without its per-request merging.

    ``Session.request`` merges session and request settings, prepares the URL
    (parsing, IDNA, re-quoting), the headers (a validity check per header),
    cookies and auth, then routes through hooks and redirect handling on
    EVERY request: at fleet sizes that was a third of the client's CPU, which
    is what bounds throughput under the GIL.  Here a request is prepared by
    requests itself (``PreparedRequest.prepare``) once per method and URL;
    each send copies it, sets the body, and hands it to the same
    ``HTTPAdapter.send`` that ``Session.send`` calls, so the wire bytes, the
    connection pool and the exceptions raised are requests' own.

    The environment is read once, when the session is made, the way
    ``trust_env`` would read it for this URL: proxies from HTTP(S)_PROXY,
    ALL_PROXY and NO_PROXY; the CA bundle is the caller's ``verify``.
    ~/.netrc is not read (it could replace our header), redirects are never
    followed (they would resend the key), and cookies are neither kept nor
    sent: the API authenticates every request by its key.
    """

    def __init__(self, base_url: str, api_key: str, pool_size: int = 8) -> None:
        self.proxies = requests.utils.get_environ_proxies(base_url)
        # The pool must hold one connection per worker, or workers queue for
        # sockets and each overflow request pays a new TCP/TLS handshake.
        self.adapter = HTTPAdapter(pool_connections=1, pool_maxsize=max(pool_size, 1), max_retries=0)
        self.headers = requests.utils.default_headers()
        self.headers.update({
            "Content-Type": "application/json",
            "Accept": "application/json",
            "X-API-Key": api_key,
            "User-Agent": "monoz.link-ansible-collection",
        })
        self._prepared: dict = {}
        # When a request last went out: a kept session idle for long may hold
        # connections a server or NAT has dropped without a word.
        self.last_used = time.monotonic()
        self.pid = os.getpid()

    def _template(self, method: str, url: str):
        prepared = self._prepared.get((method, url))
        if prepared is None:
            prepared = PreparedRequest()
            prepared.prepare(method=method, url=url, headers=self.headers)
            if len(self._prepared) < MAX_PREPARED_URLS:
                self._prepared[(method, url)] = prepared
        return prepared

    def request(self, method: str, url: str, data: bytes | None = None, timeout=None, allow_redirects: bool = False,
                verify=True):
        """Send one request and read its whole body; a redirect is returned, never followed."""
        if allow_redirects:
            raise ValueError("PooledSession never follows redirects")
        template = self._template(method, url)
        prepared = PreparedRequest()
        prepared.method = template.method
        prepared.url = template.url
        prepared.headers = template.headers.copy()
        prepared.hooks = template.hooks
        if data is not None:
            prepared.headers["Content-Length"] = str(len(data))
        prepared.body = data
        self.last_used = time.monotonic()
        response = self.adapter.send(prepared, stream=False, timeout=timeout, verify=verify, cert=None,
                                     proxies=self.proxies)
        # Read the body here, as Session.send does without stream: a
        # connection that breaks mid-body raises from this call.
        response.content  # pylint: disable=pointless-statement
        return response

    def close(self) -> None:
        self.adapter.close()


class SessionKeeper:
    """Lends one PooledSession to the tasks a process runs one after another.

    A loop runs all of its items in one forked worker, and an action that
    calls another once per batch runs every batch there too: reusing the
    session saves each item a new connection (and its TCP/TLS handshake) and
    the pool's set-up.  The session is reused only while everything it was
    made from is the same: the key (its header; kept here as a digest only),
    the pool size, and the proxies the environment gives for the URL, read
    again for every task since a task's ``environment`` may change them.
    Otherwise, and after ``IDLE_SECONDS`` without a request (a connection
    idle that long may have been dropped by a server or a NAT on the way,
    and a send on it would fail as a read timeout, which is never retried),
    the old session is closed and a new one made.  One session at a time:
    the memory does not grow with the keys a play uses.  Never lends a
    session made by another process (a fork shares its sockets).
    """

    IDLE_SECONDS = 10.0

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._session: PooledSession | None = None

    def session(self, base_url: str, api_key: str, pool_size: int) -> PooledSession:
        proxies = requests.utils.get_environ_proxies(base_url)
        key = (
            hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest(),
            max(pool_size, 1),
            tuple(sorted(proxies.items())),
        )
        with self._lock:
            session = self._session
            if (session is not None and self._key == key and session.pid == os.getpid()
                    and self._clock() - session.last_used <= self.IDLE_SECONDS):
                return session
            if session is not None and session.pid == os.getpid():
                session.close()
            self._session = PooledSession(base_url, api_key, pool_size)
            self._key = key
            return self._session

    def client(self, **kwargs) -> MonozClient:
        """A MonozClient (same arguments) on the kept session; its ``close`` leaves the session open."""
        session = self.session(kwargs["api_url"], kwargs["api_key"], kwargs.get("pool_size", 8))
        return MonozClient(session=session, close_session=False, **kwargs)


def status_phrase(status_code: int) -> str:
    """``404`` -> ``'404 Not Found'``; unknown codes stay bare."""
    try:
        return f"{status_code} {http.HTTPStatus(status_code).phrase}"
    except ValueError:
        return str(status_code)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), clamped."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment is None:
            return None
        seconds = moment.timestamp() - (time.time() if now is None else now)
    if math.isnan(seconds):
        return None
    return min(max(seconds, 0.0), RETRY_AFTER_MAX_SECONDS)


def backoff_delay(retry_number: int, rng: random.Random | None = None) -> float:
    """Full-jitter exponential back-off for the ``retry_number``-th retry (1-based)."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * (2 ** (retry_number - 1)))
    return (rng or random).uniform(0, ceiling)


def _decode_body(response) -> tuple[dict, str | None]:
    """The API's JSON object, or ``({}, snippet)`` when the body is not a JSON object."""
    text = response.text or ""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        return body, None
    # Not cut here: the caller redacts first, so a cut cannot split the key.
    snippet = " ".join(text.split())
    return {}, snippet or "empty body"


class MonozClient:
    """Talks to one org's API over one pooled keep-alive session.

    Thread-safe for concurrent calls: the session shares its connection pool
    between threads, and every other attribute is read-only after
    construction.  ``session`` lends the client a session made elsewhere
    (one kept across the tasks of a worker, or a test's fake);
    ``close_session`` says whether ``close`` closes it.
    """

    def __init__(
        self,
        api_url: str,
        org_id: str,
        api_key: str,
        timeout: float = 30.0,
        validate_certs: bool = True,
        retries: int = 3,
        pool_size: int = 8,
        sleep=time.sleep,
        before_attempt=None,
        on_retry=None,
        session=None,
        close_session: bool = True,
    ) -> None:
        self.org_id = org_id
        self.org_url = f"{api_url.rstrip('/')}/{quote(org_id, safe='')}"
        self.publish_url = f"{self.org_url}/Publish/Message"
        self.timeout = timeout
        self.retries = retries
        self._api_key = api_key
        self._sleep = sleep
        # Called before every HTTP attempt, retries included: the rate limiter.
        self._before_attempt = before_attempt
        # Called as on_retry(subject, attempt, reason, delay) before each pause.
        self._on_retry = on_retry
        # Passed on every request, not only set on the session: requests lets
        # REQUESTS_CA_BUNDLE override session.verify=False (psf/requests#3829).
        self._verify = _ca_bundle_from_environment() if validate_certs else False
        self._key_is_sendable = _HEADER_VALUE.fullmatch(api_key) is not None
        self._close_session = close_session
        self._session = session if session is not None else PooledSession(self.org_url, api_key, pool_size)

    def close(self) -> None:
        if self._close_session:
            self._session.close()

    def redact(self, text: str) -> str:
        """Belt and braces: no exception or server text may carry the key out.

        Also the key as repr() quotes it: requests puts a header value that
        has control characters into its error message that way.
        """
        if not self._api_key:
            return text
        for form in (self._api_key, repr(self._api_key)[1:-1]):
            if form in text:
                text = text.replace(form, "********")
        return text

    def redact_body(self, body):
        """The API's JSON body with every string that holds the key redacted."""
        if isinstance(body, dict):
            return {key: self.redact_body(value) for key, value in body.items()}
        if isinstance(body, list):
            return [self.redact_body(value) for value in body]
        if isinstance(body, str):
            return self.redact(body)
        return body

    # -- the endpoints of API.md ----------------------------------------------
    def publish(self, body: dict) -> ApiResult:
        """POST one downlink (``Publish/Message``)."""
        return self.call("POST", "Publish/Message", body, f"ICCID {body.get('ICCID', '?')}",
                         effect="the message may have been published")

    def device_detail(self, iccid: str) -> ApiResult:
        """GET ``Device/Sim/Detail/{ICCID}``; ``data`` is the API's ``Data`` object."""
        subject = f"ICCID {iccid}"
        result = self.call("GET", f"Device/Sim/Detail/{quote(iccid, safe='')}", None, subject)
        data = result.response.get("Data")
        if not isinstance(data, dict):
            raise self._shape_error(result, subject, "no Data object")
        result.data = data
        return result

    def sim_enabled(self, iccid: str) -> ApiResult:
        """GET ``Sim/Enable/{ICCID}``; ``data`` is the SIM's ``Enabled`` boolean."""
        subject = f"ICCID {iccid}"
        result = self.call("GET", f"Sim/Enable/{quote(iccid, safe='')}", None, subject)
        data = result.response.get("Data")
        enabled = data.get("Enabled") if isinstance(data, dict) else None
        if not isinstance(enabled, bool):
            raise self._shape_error(result, subject, "no boolean Data.Enabled")
        result.data = enabled
        return result

    def set_sim_enabled(self, iccid: str, enabled: bool) -> ApiResult:
        """PUT ``Sim/Enable`` with ``{"ICCID", "Enable"}``."""
        return self.call("PUT", "Sim/Enable", {"ICCID": iccid, "Enable": enabled}, f"ICCID {iccid}",
                         effect="the SIM may have been switched")

    def reset_sim(self, iccid: str) -> ApiResult:
        """PUT ``Sim/Reset`` with ``{"ICCID"}``."""
        return self.call("PUT", "Sim/Reset", {"ICCID": iccid}, f"ICCID {iccid}",
                         effect="the reset may have started")

    def data(self, kind: str, start_time: str, end_time: str) -> ApiResult:
        """POST ``RawData`` or ``FailedData`` for a window; ``data`` is the list of records."""
        endpoint = DATA_ENDPOINTS[kind]
        result = self.call("POST", endpoint, {"StartTime": start_time, "EndTime": end_time}, endpoint)
        data = result.response.get("Data")
        # A window without records may come back as null rather than [].
        if data is None:
            data = []
        if not isinstance(data, list) or not all(isinstance(record, dict) for record in data):
            raise self._shape_error(result, endpoint, "Data is not a list of records")
        result.data = data
        return result

    def _shape_error(self, result: ApiResult, subject: str, what: str) -> MonozResponseError:
        return MonozResponseError(
            f"HTTP {status_phrase(result.status_code)} for {subject}, but the answer has {what}; check api_url",
            result,
        )

    # -- any endpoint -----------------------------------------------------------
    def call(self, method: str, path: str, body: dict | None = None, subject: str = "the API",
             effect: str | None = None) -> ApiResult:
        """Send ``method`` to ``{api_url}/{org_id}/{path}``; return on HTTP 200, raise MonozError otherwise.

        ``subject`` names what the request is about in every message
        (``ICCID 8988...``).  ``effect`` says what a request that may have
        reached the server could have done; reads leave it out.
        """
        url = f"{self.org_url}/{path}"
        if not self._key_is_sendable:
            raise MonozTransportError(
                f"Request for {subject} not sent: the api_key cannot be sent in an HTTP header (it has a line break,"
                " a NUL or leading whitespace; the value is not shown)",
                0,
            )
        # Serialise once, outside the retry loop: the bytes on the wire are
        # identical for every attempt.
        payload = None if body is None else json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        attempts = 0
        while True:
            attempts += 1
            if self._before_attempt is not None:
                self._before_attempt()
            retry_after = None
            try:
                response = self._session.request(
                    method, url, data=payload, timeout=self.timeout, allow_redirects=False, verify=self._verify
                )
            except requests.exceptions.SSLError as exc:
                # An SSLError is a ConnectionError to requests, but an
                # untrusted certificate does not heal with a retry.
                raise MonozTransportError(
                    f"TLS error talking to {url} for {subject}: {self._describe(exc)};"
                    " trust the API's CA with REQUESTS_CA_BUNDLE, or set validate_certs false for a test server",
                    attempts,
                ) from None
            except requests.exceptions.ConnectionError as exc:
                # Refused or reset before any response: the API never answered,
                # the design counts it as transient.  ConnectTimeout is a
                # ConnectionError too; ReadTimeout is not (handled below).
                retry_reason = "connection error"
                last_error: MonozError = MonozTransportError(
                    f"Could not reach the API at {url} for {subject}: {self._describe(exc)}",
                    attempts,
                )
            except requests.exceptions.Timeout as exc:
                # A read timeout means the server may have acted already:
                # never retried, or a device could get a message twice.
                raise MonozTransportError(
                    f"Timed out after {self.timeout:g}s waiting for the API to answer for {subject}"
                    f" ({self._describe(exc)}); {_not_retried(effect)}",
                    attempts,
                ) from None
            except requests.exceptions.RequestException as exc:
                raise MonozTransportError(
                    f"Request for {subject} failed: {self._describe(exc)}", attempts
                ) from None
            else:
                try:
                    return self._read_result(response, subject, attempts, effect)
                except MonozAPIError as exc:
                    if exc.status_code not in RETRY_STATUSES:
                        raise
                    retry_reason = f"HTTP {status_phrase(exc.status_code)}"
                    if exc.status_code == 429:
                        retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    last_error = exc
            if attempts > self.retries:
                # Say that the budget is spent, not just what the last fault was.
                last_error.message = f"{last_error.message} (stopping after {attempts} attempts)"
                last_error.args = (last_error.message,)
                raise last_error
            delay = retry_after if retry_after is not None else backoff_delay(attempts)
            if self._on_retry is not None:
                self._on_retry(subject, attempts, retry_reason, delay)
            self._sleep(delay)

    def _read_result(self, response, subject: str, attempts: int, effect: str | None) -> ApiResult:
        try:
            body, snippet = _decode_body(response)
        except requests.exceptions.RequestException as exc:
            # The connection broke while the body was streaming in.
            raise MonozTransportError(
                f"HTTP {status_phrase(response.status_code)} for {subject}, but the connection broke"
                f" while reading the body: {self._describe(exc)}",
                attempts,
            ) from None
        if body and response.status_code != 200:
            # A server that echoes the request could hand the key back.
            body = self.redact_body(body)
        result = ApiResult(status_code=response.status_code, response=body, attempts=attempts)
        # Success is the HTTP status: newer API versions drop "Error", so its
        # absence must not turn a success into a failure.  But a 200 whose
        # body is not a JSON object did not come from the API (a captive
        # portal, a web server at a wrong api_url): journaling it as
        # delivered would hide a message that never left.
        if response.status_code == 200:
            if snippet is None:
                return result
            raise MonozTransportError(
                f"HTTP 200 for {subject}, but the answer is not the API's JSON:"
                f" {self.redact(snippet)[:BODY_SNIPPET_CHARS]!r}; check api_url"
                + (f" (not retried: {effect})" if effect else ""),
                attempts,
            )
        if 300 <= response.status_code < 400:
            # Following a redirect would resend the API key to wherever the
            # Location points; refuse and say where it pointed.
            location = response.headers.get("Location", "no Location header")
            raise MonozTransportError(
                f"HTTP {status_phrase(response.status_code)} for {subject}: the API redirected to"
                f" {self.redact(location)}; redirects are not followed, check api_url",
                attempts,
            )
        api_message = body.get("Message") if body else None
        if api_message not in (None, ""):
            detail = str(api_message)
        else:
            detail = f"response was not JSON: {self.redact(snippet)[:BODY_SNIPPET_CHARS]!r}"
        message = f"HTTP {status_phrase(response.status_code)} for {subject}: {self.redact(detail)}"
        if response.status_code == 401:
            raise MonozAuthError(
                f"{message} (the api_key was refused for org_id {self.org_id!r}: check the key and its permissions)",
                result,
            )
        raise MonozAPIError(message, result)

    def _describe(self, exc: Exception) -> str:
        return self.redact(_root_cause(exc))


def _not_retried(effect: str | None) -> str:
    if effect:
        return f"not retried because {effect}"
    return "not retried (a read timeout is never retried: the API may be overloaded)"


def _root_cause(exc: Exception) -> str:
    """The innermost reason of a requests/urllib3 error, without the pool's noise.

    ``requests`` wraps ``MaxRetryError`` wrapping ``NewConnectionError`` whose
    text repeats the pool and URL; users need "Connection refused".
    """
    reason = exc
    for _depth in range(5):
        inner = getattr(reason, "reason", None)
        if inner is None and reason.args and isinstance(reason.args[0], BaseException):
            inner = reason.args[0]
        if not isinstance(inner, BaseException):
            break
        reason = inner
    text = str(reason)
    # urllib3 prefixes "HTTPConnection(host=..., port=...): "; the rest is the news.
    if "): " in text:
        text = text.split("): ", 1)[1]
    return f"{type(reason).__name__}: {text}" if text else type(reason).__name__
