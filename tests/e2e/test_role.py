"""The monoz.link.fleet_push role, end to end: real ansible-playbook runs against the emulator.

Each test runs the role the way a user does (tests/e2e/playbooks/role_*.yml)
and asserts on what the simulated devices received over MQTT, on the
emulator's request log, on the report file and on what the play printed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from e2e_support import API_KEY, ORG, WRONG_KEY, iccid, shows

HIDDEN = "output has been hidden"
STOP_401 = "the API refused the key (HTTP 401), so no further batch can succeed"
UNKNOWN = ["1" * 19, "2" * 19]  # well-formed ICCIDs the emulator does not know: HTTP 404


def credentials(emu, **overrides) -> dict:
    return {"fleet_push_org_id": ORG, "fleet_push_api_key": API_KEY, "fleet_push_api_url": emu.api_url, **overrides}


def push(ansible, extra_vars: dict, **kwargs):
    return ansible.run("role_push.yml", extra_vars, **kwargs)


def payloads(emu, devices: list) -> dict:
    """{ICCID: [payloads received]} for every device of the org, once everything published has arrived."""
    emu.barrier()
    received = emu.all_received()
    assert set(received) <= set(devices), f"strangers received something: {sorted(set(received) - set(devices))}"
    return {device: [message["payload"] for message in received.get(device, [])] for device in devices}


def logged(emu, devices: list) -> list:
    """The Publish requests the emulator accepted for these devices, in order (no barrier marker)."""
    return [message for message in emu.messages() if message["iccid"] in devices]


def report_of(path: Path) -> dict:
    report = json.loads(path.read_text(encoding="utf-8"))
    assert list(report) == ["summary", "devices"], list(report)
    return report


def progress_lines(output: str) -> list:
    """The progress lines the role printed, in order."""
    return re.findall(r"^\[[^]\n]*\] (batch [^\n]*)$", output, re.MULTILINE)


def write_csv(tmp_path: Path, rows: list, header: str = "iccid,apn,interval,topic") -> Path:
    path = tmp_path / "devices.csv"
    path.write_text(header + "\n" + "".join(",".join(map(str, row)) + "\n" for row in rows), encoding="utf-8")
    return path


def write_template(tmp_path: Path, text: str, name: str = "config.json.j2") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- device sources -----------------------------------------------------------------------------------------------


def test_role_csv_with_template_each_device_gets_its_own_config_and_no_fact_is_kept(emu, ansible, tmp_path):
    devices = [iccid(i) for i in range(12)]
    rows = [(device, f"apn-{n}.example", 60 * (n + 1), "/cfg" if n == 3 else "") for n, device in enumerate(devices)]
    csv_path = write_csv(tmp_path, rows)
    template = write_template(tmp_path, '{"iccid": "{{ device.iccid }}", "apn": "{{ device.apn }}",'
                                        ' "every": {{ device.interval }}}\n')
    report = tmp_path / "report.json"
    cache = tmp_path / "fact-cache"
    # No facts: the role works without injected fact variables and leaves
    # nothing of its state in a persistent fact cache.
    env = {"ANSIBLE_INJECT_FACT_VARS": "false", "ANSIBLE_CACHE_PLUGIN": "ansible.builtin.jsonfile",
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(cache)}
    run = push(ansible, {**credentials(emu), "fleet_push_devices_csv": str(csv_path),
                         "fleet_push_template": str(template), "fleet_push_topic": "/config", "fleet_push_qos": 1,
                         "fleet_push_batch_size": 5, "fleet_push_report": str(report)}, env=env)

    assert run.rc == 0, run.describe()
    assert progress_lines(run.output) == ["batch 1/3: 5 sent, 0 failed, 0 skipped",
                                          "batch 2/3: 10 sent, 0 failed, 0 skipped",
                                          "batch 3/3: 12 sent, 0 failed, 0 skipped"], run.describe()
    assert f"fleet_push: 12 device(s): 12 sent, 0 failed, 0 skipped; report {report}" in run.output
    assert emu.stats()["requests"] == 12
    emu.barrier()
    received = emu.all_received()
    for n, device in enumerate(devices):
        topic = f"/{ORG}/{device}/sub" + ("/cfg" if n == 3 else "/config")
        assert [(m["topic"], m["qos"], m["payload"]) for m in received[device]] == [
            (topic, 1, f'{{"iccid": "{device}", "apn": "apn-{n}.example", "every": {60 * (n + 1)}}}')
        ], device
    written = report_of(report)
    assert written["summary"] == {"total": 12, "sent": 12, "failed": 0, "skipped": 0}
    assert [(row["iccid"], row["status"], row["status_code"], row["msg"]) for row in written["devices"]] == [
        (device, "sent", 200, None) for device in devices
    ]
    assert not list(tmp_path.glob(".report.json.rows.jsonl"))
    cached = "".join(path.read_text() for path in cache.rglob("*") if path.is_file())
    assert "__fleet_push" not in cached


def test_role_csv_values_and_rendered_text_are_data_never_templated_again(emu, ansible, tmp_path):
    devices = [iccid(14)]
    csv_path = tmp_path / "devices.csv"
    csv_path.write_text(f'iccid,note\n{devices[0]},"{{{{ lookup(\'env\', \'HOME\') }}}}"\n', encoding="utf-8")
    template = write_template(tmp_path, "{{ device.note }} | {{ '{{' }} raw }}", name="note.j2")
    run = push(ansible, {**credentials(emu), "fleet_push_devices_csv": str(csv_path),
                         "fleet_push_template": str(template)})

    assert run.rc == 0, run.describe()
    assert payloads(emu, devices) == {devices[0]: ["{{ lookup('env', 'HOME') }} | {{ raw }}"]}


def test_role_inventory_group_renders_host_variables(emu, ansible, tmp_path):
    hosts = [{"name": f"sensor-{n}", "monoz_iccid": iccid(20 + n), "apn": f"iot-{n}"} for n in range(4)]
    template = write_template(tmp_path, "{{ device.inventory_hostname }} apn={{ device.apn }}", name="cmd.j2")
    run = ansible.run("role_inventory.yml", {**credentials(emu), "e2e_group": "sensors",
                                             "e2e_inventory_devices": hosts, "fleet_push_template": str(template)})

    assert run.rc == 0, run.describe()
    assert "fleet_push: 4 device(s): 4 sent, 0 failed, 0 skipped" in run.output
    assert payloads(emu, [h["monoz_iccid"] for h in hosts]) == {
        h["monoz_iccid"]: [f"{h['name']} apn={h['apn']}"] for h in hosts
    }
    # Plain text: format text (1), not json.
    assert {m["format"] for m in logged(emu, [h["monoz_iccid"] for h in hosts])} == {1}


def test_role_inventory_group_that_does_not_exist_fails_before_sending(emu, ansible):
    run = ansible.run("role_inventory.yml", {**credentials(emu), "e2e_group": "sensors", "e2e_inventory_devices": [],
                                             "fleet_push_payload": "x"})
    assert run.rc != 0, run.describe()
    assert "inventory group sensors (fleet_push_inventory_group) not found" in run.output, run.describe()
    assert emu.stats()["requests"] == 0


@pytest.mark.parametrize("variables", [
    {"fleet_push_device_csv": "devices.csv"},  # misspelt: all three sources unset
    {},
], ids=["misspelt", "none"])
def test_role_without_a_device_source_fails_naming_the_three_variables(emu, ansible, variables):
    run = push(ansible, {**credentials(emu), "fleet_push_payload": "x", **variables})

    assert run.rc != 0, run.describe()
    assert ("fleet_push: no device source: set one of fleet_push_devices, fleet_push_devices_csv and"
            " fleet_push_inventory_group") in run.output, run.describe()
    if variables:
        assert "unknown variable(s) fleet_push_device_csv: misspelt?" in run.output, run.describe()
    assert "device(s):" not in run.output
    assert emu.stats()["requests"] == 0


def test_role_with_two_device_sources_fails_naming_both(emu, ansible, tmp_path):
    run = push(ansible, {**credentials(emu), "fleet_push_payload": "x", "fleet_push_devices": [iccid(0)],
                         "fleet_push_devices_csv": str(write_csv(tmp_path, [(iccid(1), "a", 1, "")]))})
    assert run.rc != 0, run.describe()
    assert "give exactly one device source, not fleet_push_devices and fleet_push_devices_csv" in run.output
    assert emu.stats()["requests"] == 0


def test_role_with_an_empty_device_list_is_an_empty_push(emu, ansible, tmp_path):
    report = tmp_path / "report.json"
    run = push(ansible, {**credentials(emu), "fleet_push_payload": "x", "fleet_push_devices": [],
                         "fleet_push_report": str(report)})

    assert run.rc == 0, run.describe()
    assert f"fleet_push: 0 device(s): 0 sent, 0 failed, 0 skipped; report {report}" in run.output
    assert report_of(report) == {"summary": {"total": 0, "sent": 0, "failed": 0, "skipped": 0}, "devices": []}
    assert emu.stats()["requests"] == 0


# --- messages -----------------------------------------------------------------------------------------------------


def test_role_template_reaches_the_device_byte_for_byte(emu, ansible, tmp_path):
    # Parsed and re-serialised, 1e3 would arrive as 1000.0, 1.50 as 1.5, the
    # first "a" would vanish and the escape would be decoded.
    devices = [iccid(i) for i in range(30, 33)]
    template = write_template(tmp_path, '{"a": 1e3, "a": 2, "b": 1.50, "c": "\\u00e9", "id": "{{ device.iccid }}"}\n')
    run = push(ansible, {**credentials(emu), "fleet_push_devices": devices, "fleet_push_template": str(template)})

    assert run.rc == 0, run.describe()
    assert payloads(emu, devices) == {
        device: [f'{{"a": 1e3, "a": 2, "b": 1.50, "c": "\\u00e9", "id": "{device}"}}'] for device in devices
    }
    # A JSON object: sent with format json (0), validated but not re-serialised.
    assert [m["format"] for m in logged(emu, devices)] == [0, 0, 0]


def test_role_string_payload_is_sent_exactly_as_given(emu, ansible):
    devices = [iccid(40), iccid(41)]
    run = push(ansible, {**credentials(emu), "fleet_push_devices": devices, "fleet_push_payload": '[1E+3, {"k": 0.10}]'})
    assert run.rc == 0, run.describe()
    assert payloads(emu, devices) == {device: ['[1E+3, {"k": 0.10}]'] for device in devices}
    assert [m["format"] for m in logged(emu, devices)] == [0, 0]


def test_role_dict_payload_is_sent_as_compact_json(emu, ansible):
    devices = [iccid(42)]
    run = push(ansible, {**credentials(emu), "fleet_push_devices": devices,
                         "fleet_push_payload": {"apn": "iot.é", "n": [1, 2]}})
    assert run.rc == 0, run.describe()
    assert payloads(emu, devices) == {iccid(42): ['{"apn":"iot.é","n":[1,2]}']}


def test_role_retain_and_format_text_reach_the_api(emu, ansible):
    devices = [iccid(43), iccid(44)]
    run = push(ansible, {**credentials(emu), "fleet_push_devices": devices, "fleet_push_payload": '{"a": 1}',
                         "fleet_push_format": "text", "fleet_push_retain": True})
    assert run.rc == 0, run.describe()
    assert [(m["format"], m["retain"], m["message"]) for m in logged(emu, devices)] == [(1, True, '{"a": 1}')] * 2


# --- credentials --------------------------------------------------------------------------------------------------


def test_role_takes_credentials_from_module_defaults_alone(emu, ansible):
    devices = [iccid(i) for i in range(50, 55)]
    run = push(ansible, {"fleet_push_devices": devices, "fleet_push_payload": "from-module-defaults",
                         "e2e_module_defaults": {"org_id": ORG, "api_key": API_KEY, "api_url": emu.api_url,
                                                 "retries": 0}})

    assert run.rc == 0, run.describe()
    assert payloads(emu, devices) == {device: ["from-module-defaults"] for device in devices}
    assert not shows(API_KEY, run.output)


def test_role_takes_credentials_from_the_environment(emu, ansible):
    devices = [iccid(56)]
    run = push(ansible, {"fleet_push_devices": devices, "fleet_push_payload": "from-env"},
               env={"MONOZ_ORG_ID": ORG, "MONOZ_API_KEY": API_KEY, "MONOZ_API_URL": emu.api_url})
    assert run.rc == 0, run.describe()
    assert payloads(emu, devices) == {iccid(56): ["from-env"]}


def test_role_variables_win_over_module_defaults(emu, ansible):
    devices = [iccid(57)]
    run = push(ansible, {"fleet_push_devices": devices, "fleet_push_payload": "role-wins",
                         "fleet_push_api_key": API_KEY,
                         "e2e_module_defaults": {"org_id": ORG, "api_key": WRONG_KEY, "api_url": emu.api_url}},
               verbosity=4)
    assert run.rc == 0, run.describe()
    assert payloads(emu, devices) == {iccid(57): ["role-wins"]}
    assert not shows(API_KEY, run.output) and not shows(WRONG_KEY, run.output)


def test_role_wrong_key_from_module_defaults_shows_the_failure_without_the_key(emu, ansible):
    devices = [iccid(i) for i in range(60, 66)]
    run = push(ansible, {"fleet_push_devices": devices, "fleet_push_payload": "never", "fleet_push_batch_size": 2,
                         "e2e_module_defaults": {"org_id": ORG, "api_key": WRONG_KEY, "api_url": emu.api_url}},
               verbosity=4)

    assert run.rc != 0, run.describe()
    assert f"fleet_push: 6 of 6 device(s) failed; stopped early because {STOP_401}" in run.output, run.describe()
    assert f"first failure: ICCID {devices[0]}: HTTP 401" in run.output, run.describe()
    assert HIDDEN not in run.output
    assert not shows(WRONG_KEY, run.output)
    # The first batch was refused; the later ones were never sent.
    assert 1 <= emu.stats()["requests"] <= 2
    assert payloads(emu, devices) == {device: [] for device in devices}


def test_role_without_any_credentials_fails_with_the_modules_message(emu, ansible):
    run = push(ansible, {"fleet_push_devices": [iccid(67)], "fleet_push_payload": "never"})

    assert run.rc != 0, run.describe()
    assert "fleet_push: 1 of 1 device(s) failed; stopped early because batch 1/1 failed as a whole:" in run.output
    assert "org_id" in run.output and "api_key" in run.output, run.describe()
    assert HIDDEN not in run.output
    assert emu.stats()["requests"] == 0


# --- batches, failures, check mode --------------------------------------------------------------------------------


def test_role_max_failures_stops_starting_batches(emu, ansible, tmp_path):
    devices = [iccid(70), UNKNOWN[0], UNKNOWN[1], iccid(71)] + [iccid(i) for i in range(72, 80)]
    report = tmp_path / "report.json"
    run = push(ansible, {**credentials(emu), "fleet_push_devices": devices, "fleet_push_payload": "m",
                         "fleet_push_batch_size": 4, "fleet_push_max_failures": 1, "fleet_push_report": str(report)})

    assert run.rc != 0, run.describe()
    reason = "more than fleet_push_max_failures (1) devices failed"
    assert progress_lines(run.output) == [f"batch 1/3: 2 sent, 2 failed, 0 skipped; no further batch starts: {reason}"]
    assert f"fleet_push: 10 of 12 device(s) failed; stopped early because {reason}" in run.output
    assert f"first failure: ICCID {UNKNOWN[0]}: HTTP 404" in run.output
    assert emu.stats()["requests"] == 4
    written = report_of(report)
    assert written["summary"] == {"total": 12, "sent": 2, "failed": 10, "skipped": 0}
    assert [row["iccid"] for row in written["devices"]] == devices
    assert [row["status_code"] for row in written["devices"][:4]] == [200, 404, 404, 200]
    assert {row["msg"] for row in written["devices"][4:]} == {f"not attempted: the push stopped because {reason}"}
    assert payloads(emu, devices) == {device: (["m"] if device in (iccid(70), iccid(71)) else []) for device in devices}


def test_role_failed_devices_do_not_stop_the_push_but_fail_the_role(emu, ansible):
    devices = [iccid(80), UNKNOWN[0], iccid(81), iccid(82)]
    run = push(ansible, {**credentials(emu), "fleet_push_devices": devices, "fleet_push_payload": "f",
                         "fleet_push_batch_size": 2})

    assert run.rc != 0, run.describe()
    assert progress_lines(run.output) == ["batch 1/2: 1 sent, 1 failed, 0 skipped",
                                          "batch 2/2: 3 sent, 1 failed, 0 skipped"]
    assert f"fleet_push: 1 of 4 device(s) failed; first failure: ICCID {UNKNOWN[0]}: HTTP 404" in run.output
    assert payloads(emu, devices) == {d: ([] if d == UNKNOWN[0] else ["f"]) for d in devices}


def test_role_401_stops_after_the_first_batch(emu, ansible, tmp_path):
    devices = [iccid(i) for i in range(90, 99)]
    report = tmp_path / "report.json"
    run = push(ansible, {**credentials(emu, fleet_push_api_key=WRONG_KEY), "fleet_push_devices": devices,
                         "fleet_push_payload": "never", "fleet_push_batch_size": 3, "fleet_push_concurrency": 1,
                         "fleet_push_report": str(report)})

    assert run.rc != 0, run.describe()
    assert progress_lines(run.output) == [f"batch 1/3: 0 sent, 3 failed, 0 skipped; no further batch starts: {STOP_401}"]
    assert emu.stats()["requests"] == 1  # one worker, stopped by the first 401
    rows = report_of(report)["devices"]
    assert [row["status_code"] for row in rows] == [401] + [None] * 8
    assert all(row["msg"].startswith("not attempted") for row in rows[1:]), rows
    assert not shows(WRONG_KEY, run.output) and WRONG_KEY not in report.read_text()
    assert payloads(emu, devices) == {device: [] for device in devices}


def test_role_whole_batch_failure_stops_the_push(emu, ansible, tmp_path):
    devices = [iccid(100), iccid(101), iccid(102)]
    run = push(ansible, {**credentials(emu), "fleet_push_devices": devices, "fleet_push_payload": "j",
                         "fleet_push_batch_size": 2, "fleet_push_journal": str(tmp_path / "no-such-dir" / "j.jsonl")})

    assert run.rc != 0, run.describe()
    assert "stopped early because batch 1/2 failed as a whole:" in run.output, run.describe()
    assert "no-such-dir" in run.output
    assert emu.stats()["requests"] == 0


def test_role_check_mode_sends_nothing_and_writes_no_report(emu, ansible, tmp_path):
    devices = [iccid(i) for i in range(110, 115)]
    report = tmp_path / "report.json"
    run = push(ansible, {**credentials(emu), "fleet_push_devices": devices, "fleet_push_payload": {"a": 1},
                         "fleet_push_batch_size": 3, "fleet_push_report": str(report)}, check=True)

    assert run.rc == 0, run.describe()
    assert progress_lines(run.output) == ["batch 1/2: 0 sent, 0 failed, 0 skipped, 3 would send",
                                          "batch 2/2: 0 sent, 0 failed, 0 skipped, 5 would send"]
    assert "fleet_push: 5 device(s): 0 sent, 0 failed, 0 skipped, 5 would send" in run.output
    assert emu.stats()["requests"] == 0
    assert not report.exists()
    assert payloads(emu, devices) == {device: [] for device in devices}


def test_role_sharded_over_three_workers_reaches_each_device_once(emu, ansible, tmp_path):
    devices = [iccid(i) for i in range(120, 140)]
    run = ansible.run("role_sharded.yml", {**credentials(emu), "e2e_shards": 3, "e2e_report_dir": str(tmp_path),
                                           "fleet_push_devices": devices, "fleet_push_payload": "shard",
                                           "fleet_push_batch_size": 4})

    assert run.rc == 0, run.describe()
    assert emu.stats()["requests"] == 20
    assert payloads(emu, devices) == {device: ["shard"] for device in devices}
    for index in range(3):
        shard = devices[index::3]
        written = report_of(tmp_path / f"pusher-{index}.report.json")
        assert [row["iccid"] for row in written["devices"]] == shard
        assert f"fleet_push: {len(shard)} device(s) in shard index {index} of 3 shards: {len(shard)} sent" in run.output


# --- where each batch runs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("forced", [False, True], ids=["controller-path", "module-process"])
def test_role_calls_monoz_downlink_once_per_batch_with_its_module_defaults_on_either_path(emu, ansible, forced):
    """Each batch runs as a monoz_downlink task would: in-process by default, a module process when forced,
    with the module's module_defaults (here the only credentials) applied on both paths."""
    devices = [iccid(i) for i in range(160, 165)]
    env = {"MONOZ_EXECUTION": "module"} if forced else {}
    run = push(ansible, {"fleet_push_devices": devices, "fleet_push_payload": "per-batch",
                         "fleet_push_batch_size": 3,
                         "e2e_module_defaults": {"org_id": ORG, "api_key": API_KEY, "api_url": emu.api_url}},
               env=env, verbosity=3)

    assert run.rc == 0, run.describe()
    assert progress_lines(run.output) == ["batch 1/2: 3 sent, 0 failed, 0 skipped",
                                          "batch 2/2: 5 sent, 0 failed, 0 skipped"], run.describe()
    assert payloads(emu, devices) == {device: ["per-batch"] for device in devices}
    # One module process per batch on the module path, none on the controller path.
    executed = re.findall(r"python[\w.]* \S*AnsiballZ_monoz_downlink\.py", run.output)
    assert len(executed) == (2 if forced else 0), run.describe()
    assert not shows(API_KEY, run.output)
