"""Hostile and odd input for monoz_device_info, monoz_sim, monoz_sim_reset and monoz_data_info.

Property-based, against the live emulator, through exactly what both
execution paths run: the module's argument spec (``ArgumentSpecValidator``
over ``<module>_module_kwargs()``, as AnsibleModule and the action plugin
validate) and then its runner (``run_<module>``) with a real client.  For
every generated input:

- nothing raises (an exception would be a traceback in a playbook);
- the emulator never answers 400: input the module accepted is input the API
  accepts;
- a task that failed without sending anything names the option at fault;
- a task that sent requests reports every device it was given, in order.

Then whole-module runs of odd input through ansible-playbook must fail with a
clean message naming the option, no traceback, and nothing sent.
"""

from __future__ import annotations

import math
import re
from datetime import datetime

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from rel_support import API_KEY, ORG, iccid

REGISTERED = [iccid(index) for index in range(1000, 2000, 13)]
UNREGISTERED = ["8988280666999999999", "1", "1" * 22]
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
OPTION_RE = re.compile(r"^(iccid|devices|state|kind|start|end|concurrency|rate_limit|timeout|retries|org_id|api_key"
                       r"|api_url)\b|^(argument|missing required|parameters are mutually exclusive|one of the"
                       r" following|value of)")


def _text(**kwargs):
    return st.text(st.characters(codec="utf-8") | st.sampled_from("+#/\r\n\x00 \t\"\\{}[]é€😀"), **kwargs)


def mostly(valid, hostile):
    """Valid values seven times in eight: enough whole inputs get past validation to reach the API."""
    return st.integers(0, 7).flatmap(lambda draw: hostile if draw == 0 else valid)


hostile_iccids = st.one_of(
    st.sampled_from(REGISTERED).map(int), st.sampled_from(REGISTERED).map(lambda value: f" {value}\n"),
    st.from_regex(r"\A[0-9]{1,22}\Z"), st.from_regex(r"\A[0-9]{23,26}\Z"), _text(max_size=12), st.booleans(),
    st.floats(), st.none(), st.sampled_from(["", "１２３", "12 34", "0x12", "-1", "1e5"]),
)
iccids = mostly(st.one_of(st.sampled_from(REGISTERED), st.sampled_from(REGISTERED), st.sampled_from(UNREGISTERED)),
                hostile_iccids)
device_elements = mostly(
    st.one_of(iccids, st.fixed_dictionaries({"iccid": iccids}, optional={
        "name": _text(max_size=5), "payload": st.text(max_size=3), "state": st.just("enabled")})),
    st.one_of(st.dictionaries(st.sampled_from(["ICCID", "Iccid", "name", "x"]), st.sampled_from(REGISTERED),
                              max_size=2),
              st.lists(st.sampled_from(REGISTERED), max_size=2)),
)
devices_values = mostly(st.lists(device_elements, max_size=4),
                        st.one_of(st.text(max_size=6), st.integers(),
                                  st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
targets = mostly(
    st.one_of(st.fixed_dictionaries({"iccid": iccids}), st.fixed_dictionaries({"devices": devices_values})),
    st.one_of(st.fixed_dictionaries({"iccid": iccids, "devices": devices_values}), st.just({}),
              st.just({"iccid": None}), st.just({"devices": None})),
)
connection = st.fixed_dictionaries({}, optional={
    "timeout": mostly(st.floats(min_value=5, max_value=60), st.sampled_from([0, -1, "x", float("nan")])),
    "retries": mostly(st.integers(0, 3), st.sampled_from([21, -1, "three"])),
})
fleet_options = st.fixed_dictionaries({}, optional={
    "concurrency": mostly(st.integers(1, 16), st.sampled_from([0, 257, -3, "8", 2.5, True])),
    # A tiny positive rate is valid and slow (one request per 1/rate seconds); only rates a test can wait for.
    "rate_limit": mostly(st.one_of(st.just(0), st.floats(min_value=200, max_value=1e6)),
                         st.sampled_from([-1, float("nan"), "fast", float("inf")])),
})
states = mostly(st.sampled_from(["enabled", "disabled"]), st.sampled_from(["on", "Enabled", "", None, True, 1]))
kinds = mostly(st.sampled_from(["raw", "failed", None]), st.sampled_from(["RAW", "all", "", 0]))
instants = mostly(
    st.one_of(st.sampled_from(["2026-01-01T00:00:00Z", "2026-11-30T10:00:00.5799558Z", "2026-11-30T12:00:00+02:00",
                               "2026-11-30", "2026-11-30 10:00:00", "2026-11-30T10:00:00.123456789Z",
                               "9999-12-31T23:59:59.9999999Z"]),
              st.datetimes(min_value=datetime(1970, 1, 2)).map(lambda moment: moment.isoformat())),
    st.one_of(st.sampled_from(["now", "2026-13-01", "2026-02-30T00:00:00Z", "11/30/2026", "2026-11-30T25:00Z",
                               "1969-12-31T23:59:59Z", "0001-01-01T00:00:00Z"]),
              st.datetimes().map(lambda moment: moment.isoformat()), _text(max_size=12)),
)
look_backs = mostly(
    st.builds(lambda amount, unit: f"{amount}{unit}", st.integers(1, 10**4), st.sampled_from("smhdw")),
    st.one_of(st.builds(lambda amount, unit: f"{amount}{unit}", st.integers(0, 10**9), st.sampled_from("HMyx")),
              st.sampled_from(["1.5h", " 4 h ", "0.0000000001s", "999999999w", "-4h", "4hours", "h", "4", "0m"])),
)
windows = st.fixed_dictionaries({"start": mostly(st.one_of(look_backs, instants), st.one_of(st.none(), st.integers()))},
                                optional={"end": mostly(instants, st.none())})


@pytest.fixture(scope="module")
def live(emulator_session, collections):
    """The session emulator (faults off) and the module_utils under test."""
    emulator_session.set_faults()
    emulator_session.reset()
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    from ansible_collections.monoz.link.plugins.module_utils import _data_info, _device_info, _sim, _sim_reset
    modules = {
        "device_info": (_device_info.device_info_module_kwargs, _device_info.run_device_info),
        "sim": (_sim.sim_module_kwargs, _sim.run_sim),
        "sim_reset": (_sim_reset.sim_reset_module_kwargs, _sim_reset.run_sim_reset),
        "data_info": (_data_info.data_info_module_kwargs, _data_info.run_data_info),
    }
    yield emulator_session, modules, ArgumentSpecValidator


def _check(live, module: str, options: dict, check_mode: bool) -> None:
    process, modules, validator_class = live
    kwargs_function, runner = modules[module]
    kwargs = kwargs_function()
    kwargs.pop("supports_check_mode")
    params = {"org_id": ORG, "api_key": API_KEY, "api_url": process.api_url, **options}
    validation = validator_class(**kwargs).validate(params)
    if validation.error_messages:
        event("refused by the argument spec")
        return  # as AnsibleModule refuses it: nothing runs
    before = process.stats()
    run = runner(validation.validated_parameters, check_mode)  # must not raise
    after = process.stats()
    sent = after["requests"] - before["requests"]
    rejected = after["by_status"].get("400", 0) - before["by_status"].get("400", 0)
    assert rejected == 0, f"the module accepted {options!r}, the emulator answered 400: {run.result}"
    result = run.result
    event("requests sent" if sent else ("refused by the runner" if result.get("failed") else "nothing to send"))
    assert API_KEY not in repr(result) and API_KEY not in repr(run.warnings)
    if result.get("failed") and sent == 0 and "results" not in result:
        assert OPTION_RE.match(result["msg"]), f"a refusal that names no option: {result['msg']!r}"
    if "results" in result:
        devices = validation.validated_parameters["devices"]
        assert len(result["results"]) == len(devices)
        assert sum(value for key, value in result["summary"].items() if key != "total") == len(devices)


@PROPERTY_SETTINGS
@given(target=targets, conn=connection, fleet=fleet_options, check_mode=st.booleans())
def test_device_info_input_is_refused_by_name_or_read_without_a_400(live, target, conn, fleet, check_mode):
    _check(live, "device_info", {**target, **conn, **fleet}, check_mode)


@PROPERTY_SETTINGS
@given(target=targets, state=states, conn=connection, fleet=fleet_options, check_mode=st.booleans())
def test_sim_input_is_refused_by_name_or_applied_without_a_400(live, target, state, conn, fleet, check_mode):
    _check(live, "sim", {**target, "state": state, **conn, **fleet}, check_mode)


@PROPERTY_SETTINGS
@given(target=targets, conn=connection, fleet=fleet_options, check_mode=st.booleans())
def test_sim_reset_input_is_refused_by_name_or_sent_without_a_400(live, target, conn, fleet, check_mode):
    _check(live, "sim_reset", {**target, **conn, **fleet}, check_mode)


@PROPERTY_SETTINGS
@given(window=windows, kind=kinds, target=st.one_of(st.just({}), targets), conn=connection, check_mode=st.booleans())
def test_data_info_input_is_refused_by_name_or_read_without_a_400(live, window, kind, target, conn, check_mode):
    options = {**target, **window, **conn}
    if kind is not None:
        options["kind"] = kind
    _check(live, "data_info", options, check_mode)


# --- whole-module runs -------------------------------------------------------------
ODD_MODULE_INPUT = {
    "device_info-device_is_a_bool": ("device_info", {"devices": [iccid(10), True]}, "devices[1]"),
    "device_info-iccid_with_dashes": ("device_info", {"iccid": "8988-2806-6600"}, "iccid"),
    "device_info-concurrency_0": ("device_info", {"devices": [iccid(10)], "concurrency": 0}, "concurrency"),
    "sim-state_on": ("sim", {"iccid": iccid(10), "state": "on"}, "state"),
    "sim-no_state": ("sim", {"iccid": iccid(10)}, "state"),
    "sim-device_without_iccid": ("sim", {"devices": [iccid(10), {"name": "x"}], "state": "disabled"},
                                 "devices[1]"),
    "sim_reset-rate_limit_nan": ("sim_reset", {"devices": [iccid(10)], "rate_limit": "nan"}, "rate_limit"),
    "sim_reset-23_digits": ("sim_reset", {"devices": [iccid(10), "1" * 23]}, "devices[1]"),
    "data_info-start_yesterday": ("data_info", {"start": "yesterday"}, "start"),
    "data_info-start_after_end": ("data_info", {"start": "2026-11-30T12:00:00Z", "end": "2026-11-29T00:00:00Z"},
                                  "start"),
    "data_info-end_look_back": ("data_info", {"start": "4h", "end": "2h"}, "end"),
    "data_info-kind_all": ("data_info", {"start": "4h", "kind": "all"}, "kind"),
}


@pytest.mark.parametrize("case", sorted(ODD_MODULE_INPUT))
def test_odd_module_input_fails_cleanly_and_sends_nothing(ansible, emu, case):
    module, args, option = ODD_MODULE_INPUT[case]
    run = ansible.run(f"{module}.yml", {**emu.creds(), "rel_args": args})
    assert run.rc == 2, run.describe()
    assert run.result.get("failed") is True, run.describe()
    assert option in run.result.get("msg", ""), f"msg does not name {option}: {run.result.get('msg')!r}"
    for marker in ("Traceback (most recent call last)", "MODULE FAILURE", "Unexpected failure",
                   "unhandled exception"):
        assert marker not in run.output, f"{marker!r} in output:\n{run.describe()}"
    assert not re.search(r"Task failed: (?!Action failed|Module failed)", run.output), run.describe()
    assert "module_stderr" not in run.result, run.result
    assert emu.process.stats()["requests"] == 0, "something was sent"


def test_infinite_rate_limit_means_unpaced(live):
    """float('inf') passes the argument spec; a rate of infinity must not divide into a NaN interval."""
    process, modules, validator_class = live
    kwargs = modules["device_info"][0]()
    kwargs.pop("supports_check_mode")
    params = {"org_id": ORG, "api_key": API_KEY, "api_url": process.api_url, "devices": REGISTERED[:3],
              "rate_limit": math.inf}
    run = modules["device_info"][1](validator_class(**kwargs).validate(params).validated_parameters, False)
    assert run.result["summary"] == {"total": 3, "ok": 3, "failed": 0}, run.result
