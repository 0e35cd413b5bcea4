# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Running a module's main() the way Ansible runs it, against a scripted API.

``ScriptedAPI`` declares the exact calls a test expects (method, URL, body)
with the answer to each; every request must carry the key and the JSON
headers, any call not declared fails the test (even one made in a worker
thread, whose exception the fleet engine would otherwise turn into a failed
device), and a declared call that never came fails it too.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections import defaultdict, deque
from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.common import warnings as _ansible_warnings

from ansible_collections.monoz.link.tests.unit.fakes import API_KEY, API_URL, ORG_ID, WireTransport, make_response

try:  # ansible-core >= 2.19
    from ansible.module_utils.testing import patch_module_args
except ImportError:  # older cores: the classic _ANSIBLE_ARGS way
    @contextlib.contextmanager
    def patch_module_args(args=None):
        serialized = json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}).encode("utf-8")
        with mock.patch.object(basic, "_ANSIBLE_ARGS", serialized):
            yield

ORG_URL = f"{API_URL}/{ORG_ID}"


class AnsibleExitJson(Exception):
    def __init__(self, result: dict) -> None:
        super().__init__(result)
        self.result = result


class AnsibleFailJson(Exception):
    def __init__(self, result: dict) -> None:
        super().__init__(result)
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise AnsibleExitJson(kwargs)


def _fail_json(self, **kwargs):
    kwargs["failed"] = True
    raise AnsibleFailJson(kwargs)


def base_args(**overrides) -> dict:
    args = {"org_id": ORG_ID, "api_key": API_KEY, "api_url": API_URL}
    args.update(overrides)
    return {key: value for key, value in args.items() if value is not None}


def forget_warnings() -> None:
    """Drop the warnings a module left in ansible-core's process-wide store.

    exit_json hands them out and clears the store; a patched exit_json does
    not, and the next module run in this process would report them as its own.
    """
    for name in ("_global_warnings", "_global_deprecations"):
        store = getattr(_ansible_warnings, name, None)
        if store is not None:
            store.clear()


def run_module(module, args: dict):
    """Run ``module.main()`` with exit_json/fail_json patched; return (kind, result)."""
    forget_warnings()
    with patch_module_args(args), \
            mock.patch.multiple(basic.AnsibleModule, exit_json=_exit_json, fail_json=_fail_json):
        try:
            module.main()
        except AnsibleExitJson as exc:
            return "exit", exc.result
        except AnsibleFailJson as exc:
            return "fail", exc.result
        finally:
            forget_warnings()
    raise AssertionError("the module returned without exit_json or fail_json")


def run_module_output(module, args: dict, capsys) -> dict:
    """Run ``module.main()`` with the real exit_json/fail_json: the JSON Ansible would receive."""
    forget_warnings()
    with patch_module_args(args):
        try:
            module.main()
        except SystemExit:
            pass
        else:
            raise AssertionError("the module did not exit")
    return json.loads(capsys.readouterr().out)


def api_answer(status: int = 200, message: str = "FetchSuccess", data=None, **extra):
    """A Monoz Link JSON answer (``Data`` only when given)."""
    body = {"StatusCode": status, "Message": message, **extra}
    if data is not None:
        body["Data"] = data
    return make_response(status, body)


def detail_answer(iccid: str, **fields):
    data = {"Name": f"dev-{iccid[-4:]}", "ICCID": iccid, "IMEILock": False, "ActivationDate": "2024-02-11T07:26:54Z",
            "ExpiryDate": "2034-02-11T07:26:54Z", "Status": 1, "MessageCount": 7, "DLMessageCount": 2,
            "Volume": 500000, "CreatedDate": "2024-02-01T00:00:00Z", "UpdatedDate": "2024-03-01T00:00:00Z"}
    data.update(fields)
    return api_answer(data=data)


def enabled_answer(enabled: bool):
    return api_answer(data={"Enabled": enabled})


def update_answer():
    return api_answer(message="UpdateSuccess")


def error_answer(status: int, message: str):
    return make_response(status, {"Error": True, "StatusCode": status, "Message": message})


class ScriptedAPI:
    """Answers exactly the declared calls; see the module docstring."""

    def __init__(self, key: str = API_KEY, org_url: str = ORG_URL) -> None:
        self.key = key
        self.org_url = org_url
        self._expected: dict = defaultdict(deque)
        self.requests: list = []
        self.unexpected: list = []
        self.bad_headers: list = []
        self._lock = threading.Lock()
        self._transport = None

    def expect(self, method: str, path: str, body=None, *answers) -> ScriptedAPI:
        """Expect ``method path`` with exactly ``body`` once per answer, in that order for that call."""
        key = (method, f"{self.org_url}/{path}", _canonical(body))
        for answer in answers:
            self._expected[key].append(answer)
        return self

    def handler(self, wire):
        with self._lock:
            self.requests.append(wire)
            # API.md: every call carries the key and the JSON content type.
            expected_headers = {"X-API-Key": self.key, "Content-Type": "application/json",
                                "Accept": "application/json"}
            wrong = {name: wire.headers.get(name) for name, value in expected_headers.items()
                     if wire.headers.get(name) != value}
            if wrong:
                self.bad_headers.append((wire.method, wire.url, wrong))
            key = (wire.method, wire.url, wire.body or b"")
            queue = self._expected.get(key)
            if not queue:
                self.unexpected.append(f"{wire.method} {wire.url} {wire.body!r}")
                return make_response(599, {"Message": "unexpected request in a unit test"})
            answer = queue.popleft()
        if callable(answer) and not isinstance(answer, BaseException):
            answer = answer()
        return answer

    def calls(self) -> list:
        """``(method, path, body)`` of every request made, in order."""
        prefix = self.org_url + "/"
        return [(r.method, r.url[len(prefix):] if r.url.startswith(prefix) else r.url,
                 json.loads(r.body) if r.body else None) for r in self.requests]

    def __enter__(self) -> ScriptedAPI:
        self._transport = WireTransport(handler=self.handler)
        self._transport.__enter__()
        return self

    def __exit__(self, exc_type, *exc_info) -> None:
        self._transport.__exit__(exc_type, *exc_info)
        if exc_type is not None:
            return
        assert not self.unexpected, f"requests nobody declared: {self.unexpected}"
        assert not self.bad_headers, f"requests with wrong headers: {self.bad_headers}"
        missing = {key: len(queue) for key, queue in self._expected.items() if queue}
        assert not missing, f"declared requests never made: {missing}"


def _canonical(body) -> bytes:
    if body is None:
        return b""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
