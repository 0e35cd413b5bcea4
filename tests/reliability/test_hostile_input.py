"""Issue 6, part 3: hostile and odd input, property-based, against the live emulator.

Contract checked for every generated input, over the validation layer
(module_utils/_downlink_input.py, called directly):

- it raises DownlinkInputError whose message starts with the option at
  fault (``iccid``, ``topic``, ``message``, ``format``, ``qos``, ``retain``,
  ``devices[...]``), and putting a good value in that option makes that
  error go away; or
- it returns a body, and POSTing that body to the emulator is never a 400;
  for a registered ICCID it is a 200 and the simulated device receives
  exactly the payload (CR/LF removed for Format 0, as the vendor documents)
  on exactly ``/<org>/<iccid>/sub`` + Topic, at the QoS and retain asked for;
- never any other exception (which would be a traceback in a playbook).

MQTT wildcards in ``topic``: ``+`` and ``#`` are wildcard characters in a
topic *filter* and forbidden in the topic of a PUBLISH (MQTT 3.1.1 section
4.7.1), so a Topic holding one could never reach a device; the module refuses
them (and NUL) before sending, naming ``topic``, and so does the emulator
(400).  Empty levels (``//``) and a trailing ``/`` are legal MQTT topic levels
and are sent as given.

Then whole-module runs (both execution paths) with odd input must fail with a
clean message naming the option, no traceback, and nothing sent.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rel_support import API_KEY, ORG, Emu, iccid

GOOD = {"iccid": iccid(1), "payload": '{"ok":1}', "fmt": None, "topic": "", "qos": 0, "retain": None}
OPTION_RE = re.compile(r"^(iccid|topic|payload|format|qos|retain)\b")
REGISTERED = [iccid(index) for index in range(0, 2000, 7)]  # drawn from
ALL_REGISTERED = {iccid(index) for index in range(2000)} | {"12345678"}  # what the session emulator knows
# Whole topic = "/DEMO/" + 19-digit ICCID + "/sub" + Topic: 29 bytes before Topic.
TOPIC_ROOM = 512 - len(f"/{ORG}/{iccid(0)}/sub")
PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def live(emulator_session, collections):
    """The session emulator (faults off) and a pooled HTTP session to it."""
    emulator_session.set_faults()
    emulator_session.reset()
    from ansible_collections.monoz.link.plugins.module_utils import _downlink_input as validation
    with requests.Session() as session:
        yield Emu(emulator_session), session, validation


def _text(**kwargs):
    return st.text(st.characters(codec="utf-8") | st.sampled_from("+#/\r\n\x00 \t\"\\{}[]é€😀\ud800"), **kwargs)


iccids = st.one_of(
    st.sampled_from(REGISTERED),
    st.sampled_from(REGISTERED).map(int),
    st.sampled_from(REGISTERED).map(lambda value: f" {value}\n"),
    st.from_regex(r"\A[0-9]{1,22}\Z"),
    st.from_regex(r"\A[0-9]{23,30}\Z"),
    st.integers(min_value=-10**25, max_value=10**25),
    _text(max_size=25),
    st.sampled_from(["", " ", "１２３", "٣٣", "12 34", "0x12", "1e5", "+123", "-1"]),
    st.booleans(), st.none(), st.floats(allow_nan=True), st.lists(st.integers(), max_size=2),
)
topics = st.one_of(
    st.just(""),
    st.sampled_from(["/", "//", "///", "/a/", "/a//b", "/ABC", "/+", "/#", "/a/+/b", "/a/#", "+", "#", "a",
                     "/ü/日本/😀", "/a\nb", "/a\rb", "/a\x00b", "/a b", "/\ud800", "/$SYS", "/a\tb"]),
    _text(max_size=40).map(lambda text: "/" + text),
    _text(max_size=20),
    st.integers(TOPIC_ROOM - 3, TOPIC_ROOM + 3).map(lambda size: "/" + "t" * (size - 1)),
    st.integers(TOPIC_ROOM // 2 - 2, TOPIC_ROOM // 2 + 2).map(lambda half: "/é" + "é" * (half - 1)),
    st.integers(TOPIC_ROOM // 4 - 1, TOPIC_ROOM // 4 + 1).map(lambda quarter: "/😀" + "😀" * (quarter - 1)),
    st.none(), st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=2),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(_text(max_size=8), children, max_size=4),
    max_leaves=20,
)
messages = st.one_of(
    _text(max_size=60),
    st.sampled_from(["", " ", "\r\n", "a\r\nb", "x" * 4096, "x" * 4097, "é" * 2048, "é" * 2048 + "x",
                     "€" * 1365 + "x", "€" * 1366, "😀" * 1024, "😀" * 1024 + "x", "NaN", "[NaN]", "Infinity",
                     "-Infinity", '{"a":1}', '{"a":', "{'a': 1}", '{"a":"x\ny"}', '{"a":1}\r\n', "\r\n[1,\r\n2]",
                     "1e400", '"\\ud800"', "null", "true", "0"]),
    st.integers(4090, 4100).map(lambda size: "m" * size),
    json_values,
    st.dictionaries(_text(max_size=5), json_values, min_size=1, max_size=3),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
    st.floats(), st.binary(max_size=4),
    st.just({"nan": float("nan")}), st.just([float("inf")]), st.just({("tuple",): 1}),
)
formats = st.one_of(st.none(), st.sampled_from(["json", "text", "JSON", "Text", "", "xml", 0, 1, True]),
                    st.just(["json"]), st.just({"json": 1}))
qoses = st.one_of(st.sampled_from([0, 1, "0", "1", " 1 ", 2, -1, 1.0, 0.5, True, False, None, "yes", "", "01"]),
                  st.just([0]), st.just({"qos": 1}), st.integers())
retains = st.one_of(st.sampled_from([None, True, False, "yes", "no", "true", "False", "on", 1, 0, 2, "maybe", "",
                                     1.0]), st.just([True]), st.just({}))


def _expected_option_error(validation, exc, org, args):
    """The message names an option, and a good value there removes that error."""
    message = str(exc)
    match = OPTION_RE.match(message)
    assert match, f"error does not start with the option at fault: {message!r}"
    option = {"format": "fmt"}.get(match.group(1), match.group(1))
    fixed = dict(args, **{option: GOOD[option]})
    if option == "payload" and "format is json" in message:
        fixed["fmt"] = GOOD["fmt"]
    try:
        validation.build_downlink(org, fixed["iccid"], fixed["payload"], fixed["fmt"], fixed["topic"],
                                  fixed["qos"], fixed["retain"])
    except validation.DownlinkInputError as again:
        assert str(again) != message, f"a good {match.group(1)} did not clear the error {message!r}"


def _post_and_verify(live_emu: Emu, session: requests.Session, body: dict) -> None:
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    response = session.post(live_emu.process.publish_url, data=raw, timeout=30,
                            headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
    assert response.status_code != 400, f"validation said yes, the API said 400: {response.text} for {body!r}"
    registered = body["ICCID"] in live_emu.registered
    assert response.status_code == (200 if registered else 404), response.text
    if not registered:
        return
    got = live_emu.process.received(body["ICCID"], wait_for=1, timeout=20)
    assert len(got) == 1, got
    payload = body["Message"].replace("\r", "").replace("\n", "") if body["Format"] == 0 else body["Message"]
    assert got[0]["payload"] == payload
    assert got[0]["topic"] == f"/{ORG}/{body['ICCID']}/sub{body['Topic']}"
    assert got[0]["qos"] == body["QoS"]


def _check_one(live, args):
    live_emu, session, validation = live
    live_emu.registered = ALL_REGISTERED
    try:
        downlink = validation.build_downlink(ORG, args["iccid"], args["payload"], args["fmt"], args["topic"],
                                             args["qos"], args["retain"])
    except validation.DownlinkInputError as exc:
        _expected_option_error(validation, exc, ORG, args)
        return
    assert set(downlink.body) <= {"ICCID", "Topic", "Message", "QoS", "Format", "RetainLastMessage"}
    live_emu.process.reset()
    _post_and_verify(live_emu, session, downlink.body)


@PROPERTY_SETTINGS
@given(iccid_=iccids, message=messages, fmt=formats, topic=topics, qos=qoses, retain=retains)
def test_every_input_is_refused_by_name_or_accepted_and_delivered(live, iccid_, message, fmt, topic, qos, retain):
    _check_one(live, {"iccid": iccid_, "payload": message, "fmt": fmt, "topic": topic, "qos": qos,
                      "retain": retain})


# Edge cases pinned by name (each a class of odd input), on top of what hypothesis draws.
EDGE_INPUTS = {
    "json_text_nested_1000_deep": {"payload": "[" * 1000 + "]" * 1000, "fmt": "json"},
    "json_nan_literal": {"payload": "NaN", "fmt": "json"},
    "json_infinity_in_array": {"payload": "[1,Infinity]", "fmt": "json"},
    "format_is_a_list": {"payload": "x", "fmt": ["json"]},
    "format_is_a_dict": {"payload": "x", "fmt": {"json": 1}},
    "topic_at_512_bytes": {"payload": "x", "topic": "/" + "t" * (TOPIC_ROOM - 1), "qos": 1, "retain": True},
    "topic_513_bytes": {"payload": "x", "topic": "/" + "t" * TOPIC_ROOM},
    "topic_multibyte_edge": {"payload": "x", "topic": "/" + "é" * ((TOPIC_ROOM - 1) // 2)},
    "topic_empty_levels_trailing_slash": {"payload": "x", "topic": "//a//"},
    "topic_lone_surrogate": {"payload": "x", "topic": "/\ud800"},
    "message_4096_multibyte": {"payload": "€" * 1365 + "x", "fmt": "text"},
    "message_4097_multibyte": {"payload": "€" * 1366, "fmt": "text"},
    "message_empty": {"payload": ""},
    "message_crlf_json": {"payload": '{"a":\r\n1}', "fmt": "json"},
    "message_crlf_text": {"payload": "line1\r\nline2", "fmt": "text"},
    "message_lone_surrogate": {"payload": "\udc80"},
    "message_dict_with_nan": {"payload": {"v": float("nan")}},
    "message_dict_unicode": {"payload": {"ключ": "値", "emoji": "😀"}},
    "iccid_23_digits": {"iccid": "1" * 23},
    "iccid_fullwidth_digits": {"iccid": "１２３"},
    "iccid_int": {"iccid": int(iccid(4))},
    "qos_string_one": {"qos": "1"},
    "qos_float": {"qos": 1.0},
    "retain_yes": {"retain": "yes"},
}


@pytest.mark.parametrize("case", sorted(EDGE_INPUTS))
def test_edge_input_is_refused_by_name_or_accepted_and_delivered(live, case):
    _check_one(live, {**GOOD, "iccid": iccid(3), **EDGE_INPUTS[case]})


def _nested(depth: int):
    value: object = "leaf"
    for level in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize("depth", [50, 500, 1000])
def test_deeply_nested_message_is_refused_by_name_or_delivered(live, depth):
    _check_one(live, {**GOOD, "iccid": iccid(5), "payload": _nested(depth)})
    _check_one(live, {**GOOD, "iccid": iccid(6), "payload": "[" * depth + "]" * depth, "fmt": "json"})


device_elements = st.one_of(
    st.sampled_from(REGISTERED), st.sampled_from(REGISTERED).map(int), st.none(), st.booleans(), st.floats(),
    st.lists(st.sampled_from(REGISTERED), max_size=2), _text(max_size=8),
    st.fixed_dictionaries({"iccid": st.sampled_from(REGISTERED)}, optional={
        "payload": messages, "topic": topics, "qos": qoses, "format": formats, "retain": retains,
    }),
    st.dictionaries(st.sampled_from(["iccid", "mesage", "Topic", "ICCID", "qos", "extra"]),
                    st.sampled_from(REGISTERED) | st.integers(0, 2), max_size=3),
)
devices_values = st.one_of(
    st.lists(device_elements, min_size=0, max_size=4),
    st.none(), st.text(max_size=10), st.integers(), st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)


@PROPERTY_SETTINGS
@given(devices=devices_values, message=st.one_of(st.none(), messages), topic=topics, qos=qoses)
def test_every_devices_value_is_refused_by_name_or_accepted(live, devices, message, topic, qos):
    live_emu, session, validation = live
    live_emu.registered = ALL_REGISTERED
    defaults = {"payload": message, "format": None, "topic": topic, "qos": qos, "retain": None}
    try:
        downlinks = validation.build_batch(ORG, devices, defaults)
    except validation.DownlinkInputError as exc:
        text = str(exc)
        assert re.match(r"^devices(\[\d+\]|\b)", text), f"error does not name devices: {text!r}"
        element = re.match(r"^devices\[(\d+)\]", text)
        if element:
            assert int(element.group(1)) < len(devices)
        return
    assert isinstance(devices, list) and len(downlinks) == len(devices)
    live_emu.process.reset()
    per_device: dict[str, int] = {}
    for downlink in downlinks:
        raw = json.dumps(downlink.body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        response = session.post(live_emu.process.publish_url, data=raw, timeout=30,
                                headers={"X-API-Key": API_KEY, "Content-Type": "application/json"})
        expected = 200 if downlink.iccid in ALL_REGISTERED else 404
        assert response.status_code == expected, (
            f"validation said yes, the API said {response.status_code}: {response.text}")
        if expected == 200:
            per_device[downlink.iccid] = per_device.get(downlink.iccid, 0) + 1
    for device, count in per_device.items():
        assert len(live_emu.process.received(device, wait_for=count, timeout=20)) == count


# --- whole-module runs -------------------------------------------------------------
ODD_MODULE_INPUT = {
    "device_format_is_a_list": ({"devices": [{"iccid": iccid(10), "format": ["json"]}], "payload": "x"},
                                "format"),
    "nan_is_not_json": ({"iccid": iccid(10), "payload": "NaN", "format": "json"}, "payload"),
    "topic_wildcard": ({"iccid": iccid(10), "payload": "x", "topic": "/a/+/b"}, "topic"),
    "message_4097_bytes": ({"iccid": iccid(10), "payload": "x" * 4097}, "payload"),
    "iccid_with_dashes": ({"iccid": "8988-2806-6600", "payload": "x"}, "iccid"),
    "device_key_typo": ({"devices": [iccid(10), {"iccid": iccid(11), "mesage": "typo"}], "payload": "x"},
                        "devices[1]"),
    "qos_2": ({"iccid": iccid(10), "payload": "x", "qos": 2}, "qos"),
    "device_is_a_bool": ({"devices": [iccid(10), True], "payload": "x"}, "devices[1]"),
    "retain_maybe": ({"iccid": iccid(10), "payload": "x", "retain": "maybe"}, "retain"),
    # Module path: AnsibleModule logs its arguments to syslog first and fails on NUL with
    # "Failed to log to syslog (embedded null character)" (ansible-core behaviour).
    "topic_nul": ({"iccid": iccid(10), "payload": "x", "topic": "/a\u0000b"}, ("topic", "embedded null character")),
    "message_is_a_number": ({"iccid": iccid(10), "payload": 12.5}, "payload"),
}


# Both execution paths for these; the controller path (the default) for the rest, to keep the suite short.
BOTH_PATHS = {"device_format_is_a_list", "nan_is_not_json", "topic_nul", "device_key_typo"}
ODD_CASES = [pytest.param(case, path, id=f"{path}-{case}") for case in sorted(ODD_MODULE_INPUT)
             for path in ("controller", "module") if path == "controller" or case in BOTH_PATHS]


@pytest.mark.parametrize(("case", "execution"), ODD_CASES)
def test_odd_module_input_fails_cleanly_and_sends_nothing(ansible, emu, execution, case):
    args, option = ODD_MODULE_INPUT[case]
    options = option if isinstance(option, tuple) else (option,)
    run = ansible.run("downlink.yml", {**emu.creds(), "rel_args": args})
    result = run.result
    assert run.rc == 2, run.describe()
    assert result.get("failed") is True, run.describe()
    assert any(name in result.get("msg", "") for name in options), f"msg does not name {option}: {result.get('msg')!r}"
    _assert_no_traceback(run)
    assert emu.process.stats()["requests"] == 0, "something was sent"


def _assert_no_traceback(run) -> None:
    # ansible-core 2.19+ adds "exception": "(traceback unavailable)" to any
    # failed result at -vvv; only a real traceback counts.
    for marker in ("Traceback (most recent call last)", "MODULE FAILURE", "Unexpected failure",
                   "unhandled exception"):
        assert marker not in run.output, f"{marker!r} in output:\n{run.describe()}"
    # 2.19+: "Task failed: Action failed: <msg>" / "Module failed: <msg>" is a clean failure;
    # "Task failed: <exception text>" is an exception that escaped the plugin.
    assert not re.search(r"Task failed: (?!Action failed|Module failed)", run.output), run.describe()
    assert "module_stderr" not in run.result, run.result
    assert "Traceback" not in str(run.result.get("exception", "")), run.result


def test_json_text_nested_1000_deep_is_sent_or_refused_cleanly(ansible, emu, execution):
    """Within the 4096-byte limit; Python 3.11's json recursion limit is about 1000 levels."""
    message = "[" * 1000 + "]" * 1000
    run = ansible.run("downlink.yml", {**emu.creds(), "rel_args": {
        "iccid": iccid(12), "payload": message, "format": "json", "qos": 1}})
    _assert_no_traceback(run)
    if run.rc == 0:
        assert emu.received_exactly_one(iccid(12))["payload"] == message
    else:
        assert run.result.get("msg", "").startswith("message"), run.describe()
        assert emu.process.stats()["requests"] == 0
