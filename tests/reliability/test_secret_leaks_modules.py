"""The API key appears nowhere at -vvv for monoz_device_info, monoz_sim, monoz_sim_reset and monoz_data_info.

Every playbook of this suite runs at -vvv with ANSIBLE_LOG_PATH and is checked
for both test keys (rel_support.Ansible.check_secrets): stdout, stderr, the
log file and the registered result.  Here each module runs its success path,
a refused key (single device and a fleet stopped by the 401), an unreachable
API (whose exception texts could carry headers) and check mode, on both
execution paths, plus the environment fallback for the key.
"""

from __future__ import annotations

import socket

import pytest

from rel_support import API_KEY, ORG, WRONG_KEY, iccid

MODULES = {
    "device_info": {},
    "sim": {"state": "disabled"},
    "sim_reset": {},
    "data_info": {"start": "1h"},
}
SCENARIOS = ("success", "unauthorised", "fleet_unauthorised", "connection_refused", "check_mode", "env_fallback")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _targets(module: str, scenario: str) -> dict:
    fleet = [iccid(index) for index in range(60, 70)]
    if module == "data_info":
        return {"devices": fleet} if scenario.startswith("fleet") else {}
    return {"devices": fleet, "concurrency": 2} if scenario.startswith("fleet") else {"iccid": iccid(60)}


CASES = [pytest.param(module, scenario, path, id=f"{path}-{module}-{scenario}")
         for module in MODULES for scenario in SCENARIOS for path in ("controller", "module")
         if path == "controller" or scenario in ("unauthorised", "connection_refused")]


@pytest.mark.parametrize(("module", "scenario", "execution"), CASES)
def test_key_never_appears_in_any_output(ansible, emu, module, scenario, execution):
    creds = emu.creds()
    args = {**MODULES[module], **_targets(module, scenario)}
    env, check, expect_rc = None, False, 0
    if scenario in ("unauthorised", "fleet_unauthorised"):
        creds["rel_api_key"] = WRONG_KEY
        expect_rc = 2
    elif scenario == "connection_refused":
        creds["rel_api_url"] = f"http://127.0.0.1:{_free_port()}/api/v1"
        args["retries"] = 1
        expect_rc = 2
    elif scenario == "check_mode":
        check = True
    elif scenario == "env_fallback":
        env = {"MONOZ_API_KEY": API_KEY, "MONOZ_ORG_ID": ORG, "MONOZ_API_URL": emu.process.api_url}
        creds = {}
    if module == "data_info":
        emu.process.uplink(iccid(60), f"uplink naming no key in {scenario}")
    run = ansible.run(f"{module}.yml", {**creds, "rel_args": args}, env=env, check=check)
    # Every output was searched for both keys by ansible.run; what follows proves each path really ran.
    assert run.rc == expect_rc, run.describe()
    assert run.log, "ANSIBLE_LOG_PATH wrote nothing"
    assert "<localhost> EXEC" in run.output or "ESTABLISH LOCAL CONNECTION" in run.output, "not at -vvv"
    msg = run.result.get("msg", "")
    if scenario == "unauthorised":
        assert "401" in msg, run.describe()
    elif scenario == "fleet_unauthorised":
        assert "401" in msg, run.describe()
        if module != "data_info":
            assert all(row["status"] == "failed" for row in run.result["results"]), run.describe()
    elif scenario == "connection_refused":
        assert "refused" in msg.lower(), run.describe()
    elif module == "data_info":
        assert run.result["count"] >= 1, run.describe()
