# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Hand-written fakes shared by the unit tests: no network, no sleeping.

``FakeSession`` stands in for ``requests.Session`` when a test hands it to
``MonozClient(session=...)``; ``WireTransport`` patches
``HTTPAdapter.send`` so a real ``requests.Session`` builds the request (and
its headers) but nothing leaves the process.  Both answer from a script and
fail the test on any request the script did not expect.
"""

from __future__ import annotations

import http
import json
import threading
from dataclasses import dataclass, field
from unittest import mock

import requests
from requests.adapters import HTTPAdapter
from requests.structures import CaseInsensitiveDict

API_URL = "https://link.example.invalid/api/v1"
ORG_ID = "mti"
# A recognisable secret: every "the key never leaks" test searches for it.
API_KEY = "k3y-DO-NOT-LEAK-5f2c9a"
ICCID = "8988280666000000001"
PUBLISH_URL = f"{API_URL}/{ORG_ID}/Publish/Message"
PUBLISHED = {"Error": False, "StatusCode": 200, "Message": "MessagePublished"}


def make_response(status: int, body=None, *, text: str | None = None, headers: dict | None = None) -> requests.Response:
    """A real ``requests.Response`` with a canned status, body and headers."""
    response = requests.Response()
    response.status_code = status
    if body is not None:
        content = json.dumps(body).encode("utf-8")
    elif text is not None:
        content = text.encode("utf-8")
    else:
        content = b""
    response._content = content
    response._content_consumed = True
    response.encoding = "utf-8"
    response.headers = CaseInsensitiveDict(headers or {})
    try:
        response.reason = http.HTTPStatus(status).phrase
    except ValueError:
        response.reason = ""
    response.url = PUBLISH_URL
    return response


def api_error(status: int, message: str) -> requests.Response:
    return make_response(status, {"Error": True, "StatusCode": status, "Message": message})


def ok() -> requests.Response:
    return make_response(200, PUBLISHED)


@dataclass
class Call:
    url: str
    data: bytes
    kwargs: dict = field(default_factory=dict)
    method: str = "POST"

    @property
    def body(self) -> dict:
        return json.loads(self.data.decode("utf-8"))


class UnexpectedRequest(AssertionError):
    pass


class FakeSession:
    """Records every request (``request`` or ``post``) and answers with the next scripted item.

    An item is a ``requests.Response`` (returned), an exception instance
    (raised) or a callable ``(call) -> Response``.  A request beyond the script
    raises ``UnexpectedRequest``.
    """

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.calls: list[Call] = []
        self.closed = False
        self._lock = threading.Lock()

    def post(self, url, data=None, **kwargs):
        return self.request("POST", url, data=data, **kwargs)

    def request(self, method, url, data=None, **kwargs):
        call = Call(url, data, kwargs, method)
        with self._lock:
            self.calls.append(call)
            if not self.answers:
                raise UnexpectedRequest(f"unexpected extra request #{len(self.calls)}: {method} {url}")
            answer = self.answers.pop(0)
        if callable(answer) and not isinstance(answer, requests.Response):
            answer = answer(call)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def close(self) -> None:
        self.closed = True


@dataclass
class WireRequest:
    method: str
    url: str
    headers: dict
    body: bytes
    kwargs: dict


class WireTransport:
    """Patches ``HTTPAdapter.send``: a real Session prepares requests, none is sent.

    ``answer`` is a list (as for FakeSession) or a callable ``(WireRequest) -> item``.
    """

    def __init__(self, *answers, handler=None) -> None:
        self.answers = list(answers)
        self.handler = handler
        self.requests: list[WireRequest] = []
        self._lock = threading.Lock()
        self._patcher = mock.patch.object(HTTPAdapter, "send", autospec=True, side_effect=self._send)

    def _send(self, adapter, request, **kwargs):
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode("utf-8")
        wire = WireRequest(request.method, request.url, dict(request.headers), body, kwargs)
        with self._lock:
            self.requests.append(wire)
            if self.handler is not None:
                answer = self.handler(wire)
            elif self.answers:
                answer = self.answers.pop(0)
            else:
                raise UnexpectedRequest(f"unexpected extra request #{len(self.requests)} to {request.url}")
        if isinstance(answer, BaseException):
            raise answer
        answer.request = request
        answer.url = request.url
        return answer

    def __enter__(self) -> WireTransport:
        self._patcher.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._patcher.stop()


class SleepRecorder:
    """A ``sleep`` that records the delays asked for and returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
