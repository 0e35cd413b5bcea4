"""Issue 6, part 5: the API key appears nowhere, success and failure paths alike.

Every playbook of this suite already runs at -vvv with ANSIBLE_LOG_PATH and
is checked for both test keys (rel_support.Ansible.check_secrets): stdout,
stderr, the log file, the registered result and any journal or report.  The
tests here make sure each representative path is covered on both execution
paths, including the ones whose exception text could carry headers.
"""

from __future__ import annotations

import json
import socket

import pytest

from rel_support import API_KEY, ORG, WRONG_KEY, iccid


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


SCENARIOS = ["success", "unauthorised", "connection_refused", "check_mode", "batch_journal", "batch_unauthorised",
             "env_fallback"]


# The module path for the failure paths whose exception text could carry headers;
# the controller path (the default) for all, to keep the suite short.
CASES = [pytest.param(scenario, path, id=f"{path}-{scenario}") for scenario in SCENARIOS
         for path in ("controller", "module")
         if path == "controller" or scenario in ("unauthorised", "connection_refused", "batch_journal")]


@pytest.mark.parametrize(("scenario", "execution"), CASES)
def test_key_never_appears_in_any_output(ansible, emu, execution, scenario, tmp_path):
    journal = tmp_path / "journal.jsonl"
    creds = emu.creds()
    args = {"iccid": iccid(20), "payload": {"apn": "iot.secret.example"}, "qos": 1}
    env = None
    check = False
    expect_rc = 0
    if scenario == "unauthorised":
        creds["rel_api_key"] = WRONG_KEY
        expect_rc = 2
    elif scenario == "connection_refused":
        creds["rel_api_url"] = f"http://127.0.0.1:{_free_port()}/api/v1"
        args["retries"] = 1
        expect_rc = 2
    elif scenario == "check_mode":
        check = True
    elif scenario in ("batch_journal", "batch_unauthorised"):
        args = {"devices": [iccid(index) for index in range(20, 40)] + ["1" * 22], "payload": "cfg",
                "journal": str(journal), "concurrency": 4}
        expect_rc = 2  # the unknown 22-digit ICCID answers 404
        if scenario == "batch_unauthorised":
            creds["rel_api_key"] = WRONG_KEY
    elif scenario == "env_fallback":
        env = {"MONOZ_API_KEY": API_KEY, "MONOZ_ORG_ID": ORG, "MONOZ_API_URL": emu.process.api_url}
        creds = {}
    run = ansible.run("downlink.yml", {**creds, "rel_args": args}, env=env, check=check, secret_files=(journal,))
    assert run.rc == expect_rc, run.describe()
    assert run.log, "ANSIBLE_LOG_PATH wrote nothing"
    assert "X-API-Key" not in run.output or API_KEY not in run.output
    if scenario == "unauthorised":
        assert "401" in run.result["msg"]
    if scenario == "connection_refused":
        assert "refused" in run.result["msg"].lower(), run.result["msg"]
    if scenario == "batch_unauthorised":
        assert "401" in run.result["msg"] and emu.process.stats()["by_status"].get("401", 0) <= 4


def test_role_with_report_and_journal_leaks_no_key(ansible, emu, tmp_path):
    journal, report = tmp_path / "journal.jsonl", tmp_path / "report.json"
    extra = {
        "fleet_push_org_id": ORG, "fleet_push_api_key": API_KEY, "fleet_push_api_url": emu.process.api_url,
        "fleet_push_devices": [iccid(index) for index in range(40, 60)] + ["1" * 22],
        "fleet_push_payload": {"apn": "iot.secret.example"}, "fleet_push_batch_size": 7,
        "fleet_push_journal": str(journal), "fleet_push_report": str(report),
    }
    run = ansible.run("fleet_push.yml", extra, secret_files=(journal, report))
    assert run.rc == 2, run.describe()  # one unknown ICCID fails the role at the end
    summary = json.loads(report.read_text())["summary"]
    assert summary == {"total": 21, "sent": 20, "failed": 1, "skipped": 0}
    extra["fleet_push_api_key"] = WRONG_KEY
    refused = ansible.run("fleet_push.yml", {**extra, "fleet_push_journal": str(tmp_path / "j2.jsonl")},
                          secret_files=(journal, report, tmp_path / "j2.jsonl"))
    assert refused.rc == 2 and "401" in refused.output, refused.describe()
