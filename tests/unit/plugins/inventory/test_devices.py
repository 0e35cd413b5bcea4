# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The monoz.link.devices inventory plugin, loaded by ansible-core's own plugin loader.

The CSV, the config file, the constructed options and the inventory cache
are real; the device-info engine is replaced by a recording fake, except
where a test checks that bad options stop it before any request.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from ansible.errors import AnsibleError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader
from ansible.template import Templar
from ansible.utils.display import Display

from ansible_collections.monoz.link.plugins.module_utils._device_info import device_info_module_kwargs

try:  # ansible-core >= 2.19 renders only strings marked as trusted templates
    from ansible.template import trust_as_template
except ImportError:  # older cores render every string
    def trust_as_template(text):
        return text

PLUGIN = "monoz.link.devices"
ORG_ID = "mti"
API_KEY = "k3y-DO-NOT-LEAK-5f2c9a"
API_URL = "https://link.example.invalid/api/v1"
ICCIDS = ["8988280666000000000", "8988280666000000001", "8988280666000000002"]
CSV = (
    "ICCID,Name,Site ID,APN\n"
    f"{ICCIDS[0]},pump-1,site-01,iot.a\n"
    f"{ICCIDS[1]},,site-02,\"{{{{ lookup('pipe', 'id') }}}}\"\n"
    "\n"
    f"{ICCIDS[2]},pump-3,site-01,iot.b\n"
)


def device(iccid: str, **overrides) -> dict:
    """A device as monoz_device_info returns it (snake_case keys)."""
    facts = {
        "name": f"api-{iccid[-1]}", "iccid": iccid, "imei_lock": False,
        "activation_date": "2026-01-02T00:00:00Z", "expiry_date": "2027-01-02T00:00:00Z", "status": 1,
        "message_count": 5, "dl_message_count": 2, "volume": 4096,
        "created_date": "2026-01-01T00:00:00Z", "updated_date": "2026-01-03T00:00:00Z",
    }
    facts.update(overrides)
    return facts


class FakeEngine:
    """Stands in for run_device_info: records each call, answers from ``answers`` (ICCID -> row)."""

    def __init__(self, answers: dict | None = None, warnings: list | None = None, failure: str | None = None) -> None:
        self.calls: list = []
        self.answers = answers or {}
        self.warnings = warnings or []
        self.failure = failure

    def __call__(self, params: dict, check_mode: bool):
        self.calls.append({"params": dict(params), "check_mode": check_mode})
        if self.failure is not None:
            return SimpleNamespace(result={"changed": False, "failed": True, "msg": self.failure}, warnings=[])
        results = []
        for iccid in params["devices"]:
            row = self.answers.get(iccid) or {
                "iccid": iccid, "status": "ok", "status_code": 200, "device": device(iccid),
            }
            results.append(row)
        result = {"changed": False, "results": results}
        failed = [row for row in results if row["status"] == "failed"]
        if failed:  # worded as the engine words it
            result.update(failed=True, msg=f"{len(failed)} of {len(results)} devices failed; first failure: {failed[0]['msg']}")
        return SimpleNamespace(result=result, warnings=list(self.warnings))

    @property
    def requested(self) -> list:
        return [call["params"]["devices"] for call in self.calls]


@pytest.fixture
def engine(monkeypatch) -> FakeEngine:
    fake = FakeEngine()
    module = sys.modules[type(inventory_loader.get(PLUGIN)).__module__]
    monkeypatch.setattr(module, "run_device_info", fake)
    return fake


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch) -> Path:
    """The inventory's directory; the tests run from elsewhere so relative paths must resolve against it."""
    inventory_dir = tmp_path / "inventory"
    inventory_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (inventory_dir / "devices.csv").write_text(CSV, encoding="utf-8")
    return inventory_dir


def write_config(directory: Path, name: str = "devices.monoz.yml", **options) -> Path:
    config = {"plugin": PLUGIN, "path": "devices.csv", **options}
    path = directory / name
    path.write_text(json.dumps(config), encoding="utf-8")  # JSON is YAML
    return path


def parse(path: Path, cache: bool = True) -> InventoryData:
    """Parse like InventoryManager does: a fresh plugin, then the cache written if it changed."""
    inventory = InventoryData()
    plugin = inventory_loader.get(PLUGIN)
    assert plugin.verify_file(str(path))
    plugin.parse(inventory, DataLoader(), str(path), cache=cache)
    if plugin.get_option("cache"):
        plugin.update_cache_if_changed()
    return inventory


def host_vars(inventory: InventoryData, name: str) -> dict:
    return dict(inventory.get_host(name).get_vars())


def group_hosts(inventory: InventoryData, group: str) -> list:
    return sorted(host.name for host in inventory.groups[group].get_hosts())


def parse_error(path: Path, cache: bool = True) -> str:
    with pytest.raises(AnsibleError) as caught:
        parse(path, cache)
    return str(caught.value)


# -- the file ------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["devices.monoz.yml", "devices.monoz.yaml", "monoz.yml", "site-a.monoz.yaml"])
def test_accepts_files_ending_in_monoz_yml(workdir, name):
    assert inventory_loader.get(PLUGIN).verify_file(str(write_config(workdir, name)))


@pytest.mark.parametrize("name", ["devices.yml", "monoz.json", "devices.monoz.yml.bak", "inventory.ini"])
def test_rejects_other_file_names(workdir, name):
    assert not inventory_loader.get(PLUGIN).verify_file(str(write_config(workdir, name)))


def test_documentation_defaults_match_the_module_argument_spec():
    """The inventory's connection options default exactly as monoz_device_info's (the engine's) do."""
    from ansible import constants as C

    plugin = inventory_loader.get(PLUGIN)
    definitions = C.config.get_configuration_definitions("inventory", plugin._load_name)
    spec = device_info_module_kwargs()["argument_spec"]
    for name in ("api_url", "timeout", "validate_certs", "retries", "concurrency"):
        assert definitions[name].get("default") == spec[name].get("default"), name
        assert definitions[name]["type"] == spec[name]["type"], name
    for name, env in (("org_id", "MONOZ_ORG_ID"), ("api_key", "MONOZ_API_KEY"), ("api_url", "MONOZ_API_URL")):
        assert [entry["name"] for entry in definitions[name]["env"]] == [env]
        assert spec[name]["fallback"][1] == [env]


# -- hosts ---------------------------------------------------------------------------
def test_each_row_becomes_a_host_named_by_its_name_column_or_iccid(workdir, engine):
    inventory = parse(write_config(workdir))
    assert sorted(inventory.hosts) == sorted(["pump-1", ICCIDS[1], "pump-3"])
    assert engine.calls == []  # without details, the API is never asked


def test_host_gets_every_column_as_monoz_variable_and_runs_locally(workdir, engine):
    inventory = parse(write_config(workdir))
    variables = host_vars(inventory, "pump-1")
    assert {key: str(value) for key, value in variables.items() if key.startswith("monoz_")} == {
        "monoz_iccid": ICCIDS[0], "monoz_name": "pump-1", "monoz_site_id": "site-01", "monoz_apn": "iot.a",
    }
    assert variables["ansible_connection"] == "local"
    templar = Templar(loader=DataLoader(), variables={**variables, "ansible_playbook_python": "/opt/py/bin/python"})
    assert templar.template(variables["ansible_python_interpreter"]) == "/opt/py/bin/python"


def test_values_from_the_csv_are_never_templated(workdir, engine):
    inventory = parse(write_config(workdir))
    variables = host_vars(inventory, ICCIDS[1])
    templar = Templar(loader=DataLoader(), variables=variables)
    assert templar.template(trust_as_template("{{ monoz_apn }}")) == "{{ lookup('pipe', 'id') }}"


@pytest.mark.parametrize("column", ["Site ID", "site_id", "SiteID"])
def test_hostname_column_is_matched_like_variable_names(workdir, engine, column):
    (workdir / "devices.csv").write_text(
        f"iccid,Site ID\n{ICCIDS[0]},north\n{ICCIDS[1]},\n{ICCIDS[2]},south\n", encoding="utf-8"
    )
    inventory = parse(write_config(workdir, hostname_column=column))
    assert sorted(inventory.hosts) == sorted(["north", ICCIDS[1], "south"])


def test_missing_hostname_column_names_every_host_by_iccid(workdir, engine):
    inventory = parse(write_config(workdir, hostname_column="serial"))
    assert sorted(inventory.hosts) == sorted(ICCIDS)


@pytest.mark.parametrize("header, variable", [
    ("Device Name", "monoz_device_name"),
    ("IMEILock", "monoz_imei_lock"),
    ("DLMessageCount", "monoz_dl_message_count"),
    ("  apn-primary ", "monoz_apn_primary"),
    ("2nd.site", "monoz_2nd_site"),
])
def test_column_names_become_safe_variable_names(workdir, engine, header, variable):
    (workdir / "devices.csv").write_text(f"iccid,{header}\n{ICCIDS[0]},x\n", encoding="utf-8")
    inventory = parse(write_config(workdir))
    assert str(host_vars(inventory, ICCIDS[0])[variable]) == "x"


def test_relative_path_is_relative_to_the_inventory_file_and_absolute_works(workdir, engine, tmp_path):
    other = tmp_path / "abs.csv"
    other.write_text(f"iccid\n{ICCIDS[2]}\n", encoding="utf-8")
    assert sorted(parse(write_config(workdir, path=str(other))).hosts) == [ICCIDS[2]]
    (workdir / "sub").mkdir()
    (workdir / "sub" / "d.csv").write_text(f"iccid\n{ICCIDS[1]}\n", encoding="utf-8")
    assert sorted(parse(write_config(workdir, path="sub/d.csv")).hosts) == [ICCIDS[1]]


def test_header_only_csv_gives_no_hosts(workdir, engine):
    (workdir / "devices.csv").write_text("iccid,name\n", encoding="utf-8")
    assert not parse(write_config(workdir, details=True, org_id=ORG_ID, api_key=API_KEY)).hosts
    assert engine.calls == []


def test_byte_order_mark_is_dropped(workdir, engine):
    (workdir / "devices.csv").write_text(f"\ufefficcid,name\n{ICCIDS[0]},a\n", encoding="utf-8")
    assert list(parse(write_config(workdir)).hosts) == ["a"]


# -- constructed ---------------------------------------------------------------------
def test_keyed_groups_groups_and_compose(workdir, engine):
    inventory = parse(write_config(
        workdir,
        keyed_groups=[{"key": "monoz_site_id", "prefix": "site"}],
        groups={"apn_a": "monoz_apn == 'iot.a'"},
        compose={"label": "monoz_name ~ '@' ~ monoz_site_id"},
    ))
    assert group_hosts(inventory, "site_site_01") == ["pump-1", "pump-3"]
    assert group_hosts(inventory, "site_site_02") == [ICCIDS[1]]
    assert group_hosts(inventory, "apn_a") == ["pump-1"]
    assert host_vars(inventory, "pump-3")["label"] == "pump-3@site-01"


def test_strict_fails_on_an_undefined_variable_and_lenient_skips(workdir, engine):
    options = {"keyed_groups": [{"key": "monoz_nope", "prefix": "x"}]}
    assert "pump-1" in parse(write_config(workdir, strict=False, **options)).hosts
    assert "monoz_nope" in parse_error(write_config(workdir, strict=True, **options))


# -- bad input -----------------------------------------------------------------------
def test_missing_csv_is_named(workdir, engine):
    message = parse_error(write_config(workdir, path="nope.csv"))
    assert f"device CSV {workdir / 'nope.csv'} not found" in message


@pytest.mark.parametrize("content, expected", [
    ("name,site\nx,y\n", "no iccid column in the header ['name', 'site']"),
    ("", "is empty: it needs a header row with an iccid column"),
    (f"iccid,name\n{ICCIDS[0]},a\n89882806660000000x1,b\n", "line 3: iccid must contain digits only, got '89882806660000000x1'"),
    (f"iccid,name\n{ICCIDS[0]},a\n\n{'9' * 23},b\n", "line 4: iccid must have at most 22 digits"),
    (f"iccid,name\n{ICCIDS[0]},a\n,b\n", "line 3: iccid must not be empty"),
    (f"iccid,name\n{ICCIDS[0]},a\n{ICCIDS[0]},b\n", f"line 3: ICCID {ICCIDS[0]} is already on line 2"),
    (f"iccid,name\n{ICCIDS[0]},a,extra\n", "line 2: 3 fields, the header has 2"),
    (f"iccid,Site Name,site_name\n{ICCIDS[0]},a,b\n", "columns 'Site Name' and 'site_name' both become the variable monoz_site_name"),
    (f"iccid,%%\n{ICCIDS[0]},a\n", "column 2 ('%%') has no name usable as a variable name"),
    (b"iccid\n\xff\xfe\n", "cannot read device CSV"),
])
def test_bad_csv_fails_naming_file_and_problem(workdir, engine, content, expected):
    target = workdir / "devices.csv"
    if isinstance(content, bytes):
        target.write_bytes(content)
    else:
        target.write_text(content, encoding="utf-8")
    message = parse_error(write_config(workdir, details=True, org_id=ORG_ID, api_key=API_KEY))
    assert str(target) in message
    assert expected in message
    assert engine.calls == []  # nothing is read from the API until the whole CSV is valid


def test_duplicate_host_names_fail_naming_both_lines(workdir, engine):
    (workdir / "devices.csv").write_text(
        f"iccid,name\n{ICCIDS[0]},pump\n{ICCIDS[1]},other\n{ICCIDS[2]},pump\n", encoding="utf-8"
    )
    message = parse_error(write_config(workdir))
    assert "line 4: host name 'pump' is already used on line 2" in message


# -- details -------------------------------------------------------------------------
def details_config(workdir: Path, **options) -> Path:
    return write_config(workdir, **{"details": True, "org_id": ORG_ID, "api_key": API_KEY, "api_url": API_URL, **options})


def test_details_are_read_once_for_the_whole_fleet_with_the_connection_options(workdir, engine):
    parse(details_config(workdir, concurrency=16, timeout=5, retries=1, validate_certs=False))
    assert len(engine.calls) == 1
    params = engine.calls[0]["params"]
    assert params["devices"] == ICCIDS  # CSV order
    assert engine.calls[0]["check_mode"] is False
    assert {key: params[key] for key in ("org_id", "api_key", "api_url", "concurrency", "timeout", "retries",
                                         "validate_certs")} == {
        "org_id": ORG_ID, "api_key": API_KEY, "api_url": API_URL, "concurrency": 16, "timeout": 5.0,
        "retries": 1, "validate_certs": False,
    }
    # validated by the module's own spec: its other options have their defaults
    assert params["iccid"] is None and params["rate_limit"] == 0.0


def test_details_become_monoz_variables_and_win_over_csv_columns(workdir, engine):
    engine.answers[ICCIDS[0]] = {"iccid": ICCIDS[0], "status": "ok", "status_code": 200,
                                 "device": device(ICCIDS[0], status=0, name="console-name")}
    inventory = parse(details_config(workdir, groups={"sim_disabled": "monoz_status == 0"}))
    variables = host_vars(inventory, "pump-1")
    assert variables["monoz_status"] == 0
    assert variables["monoz_dl_message_count"] == 2
    assert variables["monoz_imei_lock"] is False
    assert str(variables["monoz_name"]) == "console-name"
    assert str(variables["monoz_site_id"]) == "site-01"
    assert str(variables["monoz_iccid"]) == ICCIDS[0]
    assert group_hosts(inventory, "sim_disabled") == ["pump-1"]


def test_connection_options_come_from_the_environment(workdir, engine, monkeypatch):
    monkeypatch.setenv("MONOZ_ORG_ID", "from-env")
    monkeypatch.setenv("MONOZ_API_KEY", API_KEY)
    monkeypatch.setenv("MONOZ_API_URL", "http://127.0.0.1:9/api/v1")
    parse(write_config(workdir, details=True))
    params = engine.calls[0]["params"]
    assert (params["org_id"], params["api_key"], params["api_url"]) == ("from-env", API_KEY, "http://127.0.0.1:9/api/v1")
    assert params["timeout"] == 30.0 and params["retries"] == 3 and params["concurrency"] == 8


@pytest.mark.parametrize("missing, env", [("org_id", "MONOZ_ORG_ID"), ("api_key", "MONOZ_API_KEY")])
def test_details_without_credentials_fail_naming_option_and_variable(workdir, engine, missing, env):
    options = {"org_id": ORG_ID, "api_key": API_KEY}
    del options[missing]
    message = parse_error(write_config(workdir, details=True, **options))
    assert f"{missing} is required with details: true" in message and env in message
    assert engine.calls == []


@pytest.mark.parametrize("option, value, expected", [
    ("timeout", -1, "timeout must be a positive number of seconds"),
    ("concurrency", 0, "concurrency must be between 1 and 256"),
    ("retries", 99, "retries must be between 0 and 20"),
    ("api_url", "ftp://x", "api_url must be an http:// or https:// URL"),
])
def test_bad_connection_options_fail_before_any_request(workdir, option, value, expected):
    """The real engine: its validation stops it before a client exists (unit tests refuse sockets)."""
    message = parse_error(details_config(workdir, **{option: value}))
    assert expected in message and API_KEY not in message


def test_api_failures_name_every_failed_iccid_the_api_message_and_never_the_key(workdir, engine):
    for iccid in ICCIDS[1:]:
        engine.answers[iccid] = {
            "iccid": iccid, "status": "failed", "status_code": 404, "device": None,
            "msg": f"HTTP 404 Not Found for ICCID {iccid}: DeviceNotFound (key {API_KEY})",
        }
    message = parse_error(details_config(workdir))
    assert f"could not read the details of 2 of 3 devices (ICCID {ICCIDS[1]}, {ICCIDS[2]})" in message
    assert f"first failure: HTTP 404 Not Found for ICCID {ICCIDS[1]}: DeviceNotFound" in message
    assert API_KEY not in message


def test_many_failures_are_summed_up(workdir, engine):
    iccids = [f"89882806661{index:08d}" for index in range(25)]
    (workdir / "devices.csv").write_text("iccid\n" + "\n".join(iccids) + "\n", encoding="utf-8")
    for iccid in iccids:
        engine.answers[iccid] = {"iccid": iccid, "status": "failed", "status_code": 500, "device": None,
                                 "msg": f"HTTP 500 for ICCID {iccid}"}
    message = parse_error(details_config(workdir))
    assert f"25 of 25 devices (ICCID {', '.join(iccids[:10])} and 15 more)" in message


def test_a_failure_of_the_whole_read_is_reported(workdir, engine):
    engine.failure = f"the batch stopped at HTTP 401 Unauthorized: bad key {API_KEY}"
    message = parse_error(details_config(workdir))
    assert "the batch stopped at HTTP 401 Unauthorized" in message and API_KEY not in message


def test_engine_warnings_are_shown(workdir, engine, monkeypatch):
    shown = []
    monkeypatch.setattr(Display, "warning", lambda self, msg, *args, **kwargs: shown.append(msg))
    engine.warnings = ["ICCID 1: HTTP 503, retrying in 0.5s (3 retries remaining)"]
    parse(details_config(workdir))
    assert shown == ["monoz.link.devices: ICCID 1: HTTP 503, retrying in 0.5s (3 retries remaining)"]


# -- the inventory cache -------------------------------------------------------------
def cached_config(workdir: Path, cache_dir: Path, **options) -> Path:
    return details_config(workdir, cache=True, cache_plugin="ansible.builtin.jsonfile",
                          cache_connection=str(cache_dir), **options)


def test_cached_details_are_not_read_again(workdir, engine, tmp_path):
    config = cached_config(workdir, tmp_path / "cache")
    first = parse(config)
    second = parse(config)
    assert engine.requested == [ICCIDS]
    assert host_vars(second, "pump-1")["monoz_volume"] == host_vars(first, "pump-1")["monoz_volume"] == 4096


def test_cache_file_holds_no_key(workdir, engine, tmp_path):
    parse(cached_config(workdir, tmp_path / "cache"))
    files = list((tmp_path / "cache").iterdir())
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert ICCIDS[0] in text and API_KEY not in text


def test_flush_cache_reads_the_details_again(workdir, engine, tmp_path):
    config = cached_config(workdir, tmp_path / "cache")
    parse(config)
    parse(config, cache=False)  # ansible-inventory --flush-cache
    parse(config)
    assert engine.requested == [ICCIDS, ICCIDS]


def test_only_new_devices_are_read_when_the_csv_grows(workdir, engine, tmp_path):
    config = cached_config(workdir, tmp_path / "cache")
    parse(config)
    new = "8988280666000000009"
    with (workdir / "devices.csv").open("a", encoding="utf-8") as handle:
        handle.write(f"{new},pump-9,site-03,iot.c\n")
    inventory = parse(config)
    parse(config)
    assert engine.requested == [ICCIDS, [new]]
    assert host_vars(inventory, "pump-9")["monoz_dl_message_count"] == 2


def test_cache_of_another_org_or_api_is_not_used(workdir, engine, tmp_path):
    cache_dir = tmp_path / "cache"
    parse(cached_config(workdir, cache_dir))
    options = {"cache": True, "cache_plugin": "ansible.builtin.jsonfile", "cache_connection": str(cache_dir)}
    parse(write_config(workdir, details=True, org_id="other", api_key=API_KEY, api_url=API_URL, **options))
    parse(write_config(workdir, details=True, org_id="other", api_key=API_KEY, api_url="http://127.0.0.1:9/api/v1",
                       **options))
    assert engine.requested == [ICCIDS, ICCIDS, ICCIDS]


def test_without_cache_every_parse_reads(workdir, engine):
    config = details_config(workdir)
    parse(config)
    parse(config)
    assert engine.requested == [ICCIDS, ICCIDS]


def test_inventory_manager_uses_the_plugin_through_auto(workdir, engine, tmp_path):
    """What ansible-inventory and ansible-playbook do: the auto plugin finds ours by the plugin key."""
    config = cached_config(workdir, tmp_path / "cache")
    for run in ("first", "second"):
        manager = InventoryManager(loader=DataLoader(), sources=[str(config)])
        assert sorted(host.name for host in manager.get_hosts()) == sorted(["pump-1", ICCIDS[1], "pump-3"]), run
    assert engine.requested == [ICCIDS]
    assert os.listdir(tmp_path / "cache")
