"""The fleet_push role's documented interface agrees with its code (no playbook run needed)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROLE = Path(__file__).resolve().parent.parent.parent / "roles" / "fleet_push"
# fleet_push_retries was there in 0.1.0 (with the role's own default of 3);
# fleet_push_payload was fleet_push_message.
NEW_IN_0_2_0 = {"fleet_push_validate_certs", "fleet_push_timeout", "fleet_push_retain", "fleet_push_payload"}


def load(relative: str):
    return yaml.safe_load((ROLE / relative).read_text(encoding="utf-8"))


def options() -> dict:
    return load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def test_argument_spec_defaults_are_exactly_the_role_defaults():
    documented = {name: spec["default"] for name, spec in options().items() if "default" in spec}
    assert documented == load("defaults/main.yml")


def test_module_options_are_unset_so_module_defaults_apply():
    defaults = load("defaults/main.yml")
    for name in ("org_id", "api_key", "api_url", "validate_certs", "timeout", "retries", "topic", "qos", "format",
                 "retain", "concurrency", "rate_limit", "journal"):
        assert f"fleet_push_{name}" not in defaults
        assert f"fleet_push_{name}" in options()


def test_no_device_source_has_a_default():
    defaults = load("defaults/main.yml")
    assert not {"fleet_push_devices", "fleet_push_devices_csv", "fleet_push_inventory_group"} & set(defaults)


def test_new_variables_say_when_they_came():
    added = {name: spec.get("version_added") for name, spec in options().items() if "version_added" in spec}
    assert added == dict.fromkeys(NEW_IN_0_2_0, "0.2.0")


def test_the_api_key_is_no_log():
    assert options()["fleet_push_api_key"].get("no_log") is True
