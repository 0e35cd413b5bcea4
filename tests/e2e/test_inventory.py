"""The monoz.link.devices inventory plugin, end to end: real ansible-inventory and ansible-playbook runs.

The details come from the emulator over real HTTP; what the cache saves is
read from the emulator's own request count; what the hosts are used for is
checked where it lands, at the simulated devices over MQTT.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from e2e_support import API_KEY, ORG, WRONG_KEY, iccid, isolated_ansible_env, local_controller_files, shows

E2E_DIR = Path(__file__).resolve().parent
REPO_ROOT = E2E_DIR.parent.parent
EXAMPLE = REPO_ROOT / "docs" / "examples" / "devices.monoz.yml"
PLAYBOOKS = E2E_DIR / "playbooks"
TIMEOUT_S = 180
# An ICCID the emulator does not know.
UNKNOWN_ICCID = "8988280666999999999"


def unwrap(value: Any) -> Any:
    """ansible-inventory's JSON with the {"__ansible_unsafe": ...} wrappers of unsafe strings removed."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return unwrap(value["__ansible_unsafe"])
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


class Inventory:
    """Writes a CSV and a *.monoz.yml beside it, runs ansible-inventory and ansible-playbook on them."""

    def __init__(self, collections_root: Path, workdir: Path, emu=None) -> None:
        self.workdir = workdir
        self.emu = emu
        self.controller_inventory, self.config = local_controller_files(workdir)
        self.env = isolated_ansible_env(collections_root, workdir, self.config, None)
        # A source that fails to parse fails the command, not just a warning.
        self.env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "true"
        if emu is not None:
            self.env.update(MONOZ_ORG_ID=ORG, MONOZ_API_KEY=API_KEY, MONOZ_API_URL=emu.api_url)
        self.bin_dir = Path(sys.executable).parent
        self.path = workdir / "devices.monoz.yml"

    def write(self, rows: list[dict[str, str]], **options: Any) -> Path:
        columns = list(rows[0]) if rows else ["iccid"]
        lines = [",".join(columns)] + [",".join(row.get(column, "") for column in columns) for row in rows]
        (self.workdir / "devices.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        self.path.write_text(json.dumps({"plugin": "monoz.link.devices", "path": "devices.csv", **options}),
                             encoding="utf-8")
        return self.path

    def run(self, tool: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.bin_dir / tool), *args], cwd=self.workdir, env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=TIMEOUT_S, check=False,
        )

    def list(self, *extra: str, source: Path | None = None) -> dict[str, Any]:
        proc = self.run("ansible-inventory", "-i", str(source or self.path), "--list", *extra)
        assert proc.returncode == 0, describe(proc)
        return unwrap(json.loads(proc.stdout))

    def graph(self, source: Path | None = None) -> str:
        proc = self.run("ansible-inventory", "-i", str(source or self.path), "--graph")
        assert proc.returncode == 0, describe(proc)
        return proc.stdout


def unwrapped(text: str) -> str:
    """Warnings as one line each: before 2.19 they are wrapped at 79 columns (no terminal), even mid-path."""
    return text.replace("-\n", "-").replace("\n", " ")


def describe(proc: subprocess.CompletedProcess) -> str:
    return f"rc={proc.returncode}\n--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"


def graph_groups(graph: str) -> dict[str, list[str]]:
    """{group: sorted hosts} of an ``ansible-inventory --graph`` output (one level of groups)."""
    groups: dict[str, list[str]] = {}
    current = None
    for line in graph.splitlines():
        text = line.strip()
        if "@" in text and text.endswith(":"):
            current = text[text.index("@") + 1:-1]
            groups[current] = []
        elif "|--" in text and current is not None:
            groups[current].append(text[text.rindex("|--") + 3:])
    return {name: sorted(hosts) for name, hosts in groups.items()}


def groups_of(listing: dict[str, Any]) -> dict[str, list[str]]:
    return {name: sorted(body.get("hosts", [])) for name, body in listing.items() if name != "_meta"}


def detail_requests(emu) -> int:
    """Device detail requests the emulator answered, whatever their status."""
    return sum(emu.stats()["by_endpoint"].get("GET Device/Sim/Detail", {}).values())


def set_sim(emu, device: str, enabled: bool) -> None:
    response = requests.put(f"{emu.api_url}/{ORG}/Sim/Enable", headers={"X-API-Key": API_KEY},
                            json={"ICCID": device, "Enable": enabled}, timeout=30)
    assert response.status_code == 200, response.text


@pytest.fixture
def inventory(collections_root: Path, tmp_path: Path) -> Inventory:
    return Inventory(collections_root, tmp_path)


@pytest.fixture
def api_inventory(collections_root: Path, tmp_path: Path, emu) -> Inventory:
    return Inventory(collections_root, tmp_path, emu)


def fleet_rows(count: int, first: int = 0) -> list[dict[str, str]]:
    sites = ("a", "b", "c")
    return [
        {"iccid": iccid(first + n), "name": f"dev-{first + n:02d}", "site": sites[n * len(sites) // count],
         "apn": f"apn{n % 2}.example"}
        for n in range(count)
    ]


# -- without the API -----------------------------------------------------------------
def test_example_inventory_graph(inventory):
    """docs/examples/devices.monoz.yml, as its comment shows it."""
    graph = inventory.graph(source=EXAMPLE)
    assert graph_groups(graph) == {
        "all": [], "ungrouped": [],
        "site_north": ["pump-north-1", "pump-north-2"],
        "site_south": ["meter-south-1", "meter-south-2"],
        "site_east": [iccid(4), "gate-east-1"],
        "backup_apn": ["gate-east-1", "meter-south-1"],
    }


def test_example_inventory_host_variables(inventory):
    listing = inventory.list(source=EXAMPLE)
    host = listing["_meta"]["hostvars"]["gate-east-1"]
    assert host == {
        "monoz_iccid": iccid(5), "monoz_name": "gate-east-1", "monoz_site": "east",
        "monoz_apn": "m2m.backup.example", "monoz_interval": "900",
        "ansible_connection": "local", "ansible_python_interpreter": "{{ ansible_playbook_python }}",
        # compose: an int since ansible-core 2.19 (native types), the text "900" before
        "report_interval": host["report_interval"],
    }
    assert str(host["report_interval"]) == "900"


def test_bad_csv_fails_the_command_naming_the_line(inventory):
    inventory.write([{"iccid": iccid(0), "name": "a"}, {"iccid": "12x4", "name": "b"}])
    proc = inventory.run("ansible-inventory", "-i", str(inventory.path), "--list")
    assert proc.returncode != 0
    expected = f"{inventory.workdir / 'devices.csv'} line 3: iccid must contain digits only, got '12x4'"
    assert expected in unwrapped(proc.stderr)


# -- with the API --------------------------------------------------------------------
def test_details_match_the_device_state(api_inventory, emu):
    rows = fleet_rows(12)
    devices = [row["iccid"] for row in rows]
    emu.uplink(devices[0], "t=21.5")
    emu.uplink(devices[0], "t=21.7")
    response = requests.post(emu.publish_url, headers={"X-API-Key": API_KEY}, timeout=30,
                             json={"ICCID": devices[1], "Topic": "", "Message": "ping", "QoS": 1, "Format": 1})
    assert response.status_code == 200, response.text
    set_sim(emu, devices[2], False)
    before = detail_requests(emu)
    api_inventory.write(rows, details=True, concurrency=4,
                        groups={"sim_disabled": "monoz_status == 0"},
                        keyed_groups=[{"key": "monoz_site", "prefix": "site"}])

    listing = api_inventory.list()

    assert detail_requests(emu) - before == len(rows)
    hostvars = listing["_meta"]["hostvars"]
    assert sorted(hostvars) == sorted(row["name"] for row in rows)
    for row in rows:
        host = hostvars[row["name"]]
        state = emu.device_state(row["iccid"])
        assert host["monoz_iccid"] == row["iccid"]
        assert host["monoz_site"] == row["site"]
        assert host["monoz_message_count"] == state["ul_message_count"], row
        assert host["monoz_dl_message_count"] == state["dl_message_count"], row
        assert host["monoz_status"] == (1 if state["enabled"] else 0), row
        assert {"monoz_volume", "monoz_activation_date", "monoz_expiry_date", "monoz_imei_lock"} <= set(host)
    assert hostvars["dev-00"]["monoz_message_count"] == 2
    assert hostvars["dev-01"]["monoz_dl_message_count"] == 1
    groups = groups_of(listing)
    assert groups["sim_disabled"] == ["dev-02"]
    assert groups["site_a"] == [f"dev-{n:02d}" for n in range(4)]


def test_cache_saves_every_request_until_flushed(api_inventory, emu):
    rows = fleet_rows(9)
    cache_dir = api_inventory.workdir / "inventory-cache"
    api_inventory.write(rows, details=True, cache=True, cache_plugin="ansible.builtin.jsonfile",
                        cache_connection=str(cache_dir))
    start = detail_requests(emu)

    first = api_inventory.list()
    after_first = detail_requests(emu)
    second = api_inventory.list()
    after_second = detail_requests(emu)
    graph = api_inventory.graph()
    after_graph = detail_requests(emu)
    # ansible-playbook has --flush-cache on every supported core (ansible-inventory only since 2.17).
    flushed = api_inventory.run("ansible-playbook", "-i", str(api_inventory.path), "--flush-cache", "--list-hosts",
                                str(PLAYBOOKS / "inventory_hosts.yml"))
    assert flushed.returncode == 0, describe(flushed)
    after_flush = detail_requests(emu)

    assert after_first - start == len(rows)
    assert after_second == after_first  # the second run made no API request
    assert after_graph == after_first
    assert after_flush - after_second == len(rows)
    assert second == first
    assert all(row["name"] in graph for row in rows)
    cached = "".join(path.read_text(encoding="utf-8") for path in cache_dir.iterdir())
    assert rows[0]["iccid"] in cached and API_KEY not in cached


def test_unknown_iccid_fails_naming_it_and_not_the_key(api_inventory, emu):
    api_inventory.write([{"iccid": iccid(0)}, {"iccid": UNKNOWN_ICCID}], details=True)
    proc = api_inventory.run("ansible-inventory", "-i", str(api_inventory.path), "--list", "-vvv")
    assert proc.returncode != 0
    assert "could not read the details of 1 of 2 devices" in unwrapped(proc.stderr)
    assert f"HTTP 404 Not Found for ICCID {UNKNOWN_ICCID}" in unwrapped(proc.stderr)
    assert not shows(API_KEY, proc.stdout + proc.stderr)


def test_wrong_key_fails_and_is_never_shown(api_inventory, emu):
    api_inventory.write(fleet_rows(3), details=True)
    proc = api_inventory.run("ansible-inventory", "-i", str(api_inventory.path), "--list", "-vvv",
                             env={"MONOZ_API_KEY": WRONG_KEY})
    assert proc.returncode != 0
    assert "HTTP 401" in unwrapped(proc.stderr)
    assert not shows(WRONG_KEY, proc.stdout + proc.stderr)


def test_details_without_credentials_name_the_variable(api_inventory, emu):
    api_inventory.write(fleet_rows(2), details=True)
    proc = api_inventory.run("ansible-inventory", "-i", str(api_inventory.path), "--list",
                             env={"MONOZ_ORG_ID": ""})
    assert proc.returncode != 0
    message = unwrapped(proc.stderr)
    assert "org_id is required with details: true" in message and "MONOZ_ORG_ID" in message
    assert detail_requests(emu) == 0


# -- hosts at work -------------------------------------------------------------------
@pytest.mark.parametrize("execution_path", ["controller", "module"])
def test_inventory_hosts_feed_the_role_a_module_and_per_host_tasks(api_inventory, emu, execution_path):
    """Group site_a through fleet_push_inventory_group, site_b through a module's devices, site_c host by host.

    On the module path each per-host task starts a real module process with
    the host's ansible_python_interpreter: the inventory's
    {{ ansible_playbook_python }} must resolve to a Python that has requests.
    """
    rows = fleet_rows(12)
    api_inventory.write(rows, keyed_groups=[{"key": "monoz_site", "prefix": "site"}])
    assert graph_groups(api_inventory.graph())["site_c"] == sorted(row["name"] for row in rows if row["site"] == "c")
    command = ["-i", str(api_inventory.controller_inventory), "-i", str(api_inventory.path),
               str(PLAYBOOKS / "inventory_push.yml")]
    proc = api_inventory.run("ansible-playbook", *command, env={"MONOZ_EXECUTION": execution_path})
    assert proc.returncode == 0, describe(proc)

    by_site = {site: [row for row in rows if row["site"] == site] for site in "abc"}
    emu.received_counts(wait_total=len(rows))
    emu.barrier()
    received = emu.all_received()
    assert set(received) == {row["iccid"] for row in rows}
    for row in by_site["a"]:
        assert [(m["topic"], m["payload"]) for m in received[row["iccid"]]] == [
            (f"/{ORG}/{row['iccid']}/sub/config", json.dumps({"name": row["name"], "apn": row["apn"]}))
        ], row
    for row in by_site["b"]:
        assert [(m["topic"], m["payload"]) for m in received[row["iccid"]]] == [
            (f"/{ORG}/{row['iccid']}/sub/cmd", "reboot")
        ], row
    for row in by_site["c"]:
        assert [m["payload"] for m in received[row["iccid"]]] == [f"hello {row['name']}"], row
    assert not shows(API_KEY, proc.stdout + proc.stderr)
