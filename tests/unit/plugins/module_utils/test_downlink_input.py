# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Validation of every option and device, and the exact request bodies built from them."""

from __future__ import annotations

import json

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ansible_collections.monoz.link.plugins.module_utils._downlink_input import (
    Downlink,
    DownlinkInputError,
    build_batch,
    build_downlink,
    downlink_digest,
    normalise_iccid,
    serialise_payload,
    validate_qos,
    validate_retain,
    validate_topic,
)

ORG = "mti"
ICCID = "8988280666000000001"
# "/mti/12345678/sub" is 17 bytes: a topic of 495 bytes makes exactly 512.
SHORT_ICCID = "12345678"
PREFIX_BYTES = len(f"/{ORG}/{SHORT_ICCID}/sub")
DEFAULTS = {"payload": "reboot", "format": None, "topic": "", "qos": 0, "retain": None}

# Every str, lone surrogates included (module args arrive as JSON, and JSON can
# carry "\ud800"); st.text() never draws surrogates, so build strings by hand.
any_char = st.one_of(st.characters(), st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF))
any_text = st.lists(any_char, max_size=600).map("".join)


def downlink(**overrides) -> Downlink:
    args = {"org_id": ORG, "iccid": ICCID, "payload": "reboot", "fmt": None, "topic": "", "qos": 0, "retain": None}
    args.update(overrides)
    return build_downlink(**args)


# --- ICCID -------------------------------------------------------------------

@pytest.mark.parametrize("value", ["1", "12345678", ICCID, "1" * 22])
def test_iccid_of_1_to_22_digits_is_accepted(value):
    assert normalise_iccid(value) == value


def test_iccid_given_as_int_is_accepted_as_its_digits():
    assert normalise_iccid(8988280666000000001) == "8988280666000000001"


def test_iccid_whitespace_is_stripped():
    assert normalise_iccid("  12345678\n") == "12345678"


@pytest.mark.parametrize("value, fragment", [
    (True, "got bool"),
    (False, "got bool"),
    (None, "got NoneType"),
    (12.0, "got float"),
    ("", "must not be empty"),
    ("   ", "must not be empty"),
    ("1" * 23, "at most 22 digits"),
    ("8988-2806", "digits only"),
    ("89882806660000000x1", "digits only"),
    ("١٢٣", "digits only"),  # Arabic-Indic digits: str.isdigit() says yes, the API says no
    ("１２３", "digits only"),  # full-width digits
    ("-123", "digits only"),
    ("1 2", "digits only"),
])
def test_bad_iccid_is_refused_naming_the_option(value, fragment):
    with pytest.raises(DownlinkInputError) as info:
        normalise_iccid(value)
    assert str(info.value).startswith("iccid ")
    assert fragment in str(info.value)


# --- topic -------------------------------------------------------------------

@pytest.mark.parametrize("topic", ["", None, "/", "/config", "/config/apn", "/a/b/c/d", "/ünïcødé"])
def test_valid_topic_is_accepted(topic):
    assert validate_topic(topic, ORG, ICCID) == (topic or "")


@pytest.mark.parametrize("topic, fragment", [
    ("config", "start with '/'"),
    (" /config", "start with '/'"),
    ("/config/+", "wildcard '+'"),
    ("/config/#", "wildcard '#'"),
    ("/a+b", "wildcard '+'"),
    ("/a\x00b", "NUL"),
    (5, "must be a string"),
])
def test_bad_topic_is_refused(topic, fragment):
    with pytest.raises(DownlinkInputError) as info:
        validate_topic(topic, ORG, ICCID)
    assert str(info.value).startswith("topic ")
    assert fragment in str(info.value)


def test_whole_topic_of_exactly_512_bytes_with_multibyte_chars_is_accepted():
    topic = "/" + "é" * 247  # 1 + 494 = 495 bytes
    assert PREFIX_BYTES + len(topic.encode()) == 512
    assert validate_topic(topic, ORG, SHORT_ICCID) == topic


def test_whole_topic_of_513_bytes_is_refused():
    topic = "/" + "é" * 247 + "a"
    with pytest.raises(DownlinkInputError) as info:
        validate_topic(topic, ORG, SHORT_ICCID)
    assert "513 bytes" in str(info.value)
    assert "512" in str(info.value)


def test_multibyte_char_crossing_the_512_byte_limit_is_refused():
    topic = "/" + "a" * 493 + "é"  # 17 + 1 + 493 + 2 = 513
    with pytest.raises(DownlinkInputError):
        validate_topic(topic, ORG, SHORT_ICCID)


def test_topic_limit_counts_the_org_and_iccid_prefix():
    topic = "/" + "a" * 494  # fits with an 8-digit ICCID, not with a 19-digit one
    assert validate_topic(topic, ORG, SHORT_ICCID) == topic
    with pytest.raises(DownlinkInputError):
        validate_topic(topic, ORG, ICCID)


# --- qos and retain ----------------------------------------------------------

@pytest.mark.parametrize("value, expected", [(0, 0), (1, 1), ("0", 0), ("1", 1), (" 1 ", 1)])
def test_qos_0_or_1_is_accepted_including_csv_strings(value, expected):
    result = validate_qos(value)
    assert result == expected
    assert result.__class__ is int


@pytest.mark.parametrize("value", [True, False, 2, -1, "2", "one", None, 1.0, 0.5])
def test_bad_qos_is_refused(value):
    with pytest.raises(DownlinkInputError, match="qos must be 0 or 1"):
        validate_qos(value)


@pytest.mark.parametrize("value, expected", [
    (True, True), (False, False), ("yes", True), ("no", False), ("true", True), ("False", False), (None, None),
])
def test_retain_accepts_ansible_booleans(value, expected):
    assert validate_retain(value) is expected


@pytest.mark.parametrize("value", ["maybe", "2", [], {}])
def test_bad_retain_is_refused(value):
    with pytest.raises(DownlinkInputError, match="retain must be a boolean"):
        validate_retain(value)


# --- message -----------------------------------------------------------------

def test_dict_message_becomes_compact_json_with_format_0():
    assert serialise_payload({"apn": "iot.example", "interval": 300}, None) == (
        '{"apn":"iot.example","interval":300}', 0)


def test_list_message_becomes_compact_json_with_format_0():
    assert serialise_payload([1, "a", {"b": None}], None) == ('[1,"a",{"b":null}]', 0)


def test_json_message_keeps_non_ascii_as_utf8():
    assert serialise_payload({"name": "café ✓"}, None) == ('{"name":"café ✓"}', 0)


def test_string_message_is_text_format_1_and_sent_as_is():
    assert serialise_payload("reboot now\r\n", None) == ("reboot now\r\n", 1)


def test_string_message_with_format_json_must_parse():
    assert serialise_payload('{"a": 1}', "json") == ('{"a": 1}', 0)
    with pytest.raises(DownlinkInputError, match="payload is not valid JSON but format is json"):
        serialise_payload("{a: 1}", "json")


def test_dict_message_with_format_text_is_json_text_format_1():
    assert serialise_payload({"a": 1}, "text") == ('{"a":1}', 1)


def test_unknown_format_is_refused_naming_format():
    with pytest.raises(DownlinkInputError, match="^format must be one of json, text"):
        serialise_payload("x", "xml")


@pytest.mark.parametrize("message", ["", None])
def test_empty_or_missing_message_is_refused(message):
    with pytest.raises(DownlinkInputError, match="^payload "):
        serialise_payload(message, None)


def test_message_of_4096_utf8_bytes_is_accepted():
    message = "é" * 2048
    assert serialise_payload(message, None) == (message, 1)


def test_message_of_4097_utf8_bytes_is_refused_though_it_has_fewer_chars():
    message = "é" * 2048 + "a"  # 2049 characters, 4097 bytes
    with pytest.raises(DownlinkInputError, match="4097 bytes"):
        serialise_payload(message, None)


def test_json_message_size_is_counted_after_serialisation():
    # {"a":"..."} adds 8 bytes around the value
    serialise_payload({"a": "x" * 4088}, None)
    with pytest.raises(DownlinkInputError, match="4097 bytes after serialisation"):
        serialise_payload({"a": "x" * 4089}, None)


@pytest.mark.parametrize("message, type_name", [(42, "int"), (3.5, "float"), (True, "bool")])
def test_scalar_message_is_refused_with_a_hint_to_quote_it(message, type_name):
    with pytest.raises(DownlinkInputError) as info:
        serialise_payload(message, None)
    assert f"got {type_name}" in str(info.value)
    assert "quote it" in str(info.value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_number_in_json_message_is_refused(value):
    with pytest.raises(DownlinkInputError, match="cannot be serialised to JSON"):
        serialise_payload({"x": value}, None)


def test_unserialisable_object_in_json_message_is_refused():
    with pytest.raises(DownlinkInputError, match="cannot be serialised to JSON"):
        serialise_payload({"x": object()}, None)


def test_lone_surrogate_in_topic_is_refused_as_input_error():
    with pytest.raises(DownlinkInputError, match="^topic "):
        validate_topic("/a\ud800", ORG, ICCID)


def test_lone_surrogate_in_message_is_refused():
    with pytest.raises(DownlinkInputError, match="not valid UTF-8"):
        serialise_payload("a\ud800b", None)


# --- request body ------------------------------------------------------------

def test_body_has_exactly_the_api_keys_without_retain_when_unset():
    assert downlink(topic="/config", qos=1).body == {
        "ICCID": ICCID, "Topic": "/config", "Message": "reboot", "QoS": 1, "Format": 1}


@pytest.mark.parametrize("retain", [True, False])
def test_body_carries_retain_last_message_only_when_set(retain):
    body = downlink(retain=retain).body
    assert list(body) == ["ICCID", "Topic", "Message", "QoS", "Format", "RetainLastMessage"]
    assert body["RetainLastMessage"] is retain


def test_body_values_have_api_types():
    body = downlink(iccid=12345678, qos="1", retain="yes", payload={"a": 1}).body
    assert body == {"ICCID": "12345678", "Topic": "", "Message": '{"a":1}', "QoS": 1, "Format": 0,
                    "RetainLastMessage": True}
    assert body["QoS"].__class__ is int and body["Format"].__class__ is int


def test_downlink_keeps_the_normalised_iccid():
    assert downlink(iccid=" 123 ").iccid == "123"


# --- build_batch -------------------------------------------------------------

def test_batch_of_iccid_strings_uses_task_defaults():
    downlinks = build_batch(ORG, ["1", "2"], {**DEFAULTS, "topic": "/cmd", "qos": 1})
    assert [d.body for d in downlinks] == [
        {"ICCID": "1", "Topic": "/cmd", "Message": "reboot", "QoS": 1, "Format": 1},
        {"ICCID": "2", "Topic": "/cmd", "Message": "reboot", "QoS": 1, "Format": 1},
    ]


def test_device_dict_overrides_each_task_setting():
    device = {"iccid": "7", "payload": "hello", "format": "text", "topic": "/own", "qos": "1", "retain": "yes"}
    (only,) = build_batch(ORG, [device], {**DEFAULTS, "payload": {"a": 1}, "format": "json"})
    assert only.body == {"ICCID": "7", "Topic": "/own", "Message": "hello", "QoS": 1, "Format": 1,
                         "RetainLastMessage": True}


def test_device_dict_message_defaults_to_json_even_when_task_message_is_text():
    downlinks = build_batch(ORG, ["1", {"iccid": "2", "payload": {"apn": "x"}}], DEFAULTS)
    assert [(d.body["Message"], d.body["Format"]) for d in downlinks] == [("reboot", 1), ('{"apn":"x"}', 0)]


def test_device_overrides_do_not_leak_into_later_devices():
    downlinks = build_batch(ORG, [{"iccid": "1", "topic": "/a", "retain": True}, "2"], DEFAULTS)
    assert downlinks[1].body == {"ICCID": "2", "Topic": "", "Message": "reboot", "QoS": 0, "Format": 1}


def test_device_dict_with_unknown_key_is_refused_naming_key_and_index():
    with pytest.raises(DownlinkInputError) as info:
        build_batch(ORG, ["1", {"iccid": "2", "mesage": "typo"}], DEFAULTS)
    assert str(info.value).startswith("devices[1] has unknown key(s) mesage")


def test_device_dict_without_iccid_is_refused_naming_index():
    with pytest.raises(DownlinkInputError, match=r"^devices\[2\] has no iccid"):
        build_batch(ORG, ["1", "2", {"payload": "x"}], DEFAULTS)


@pytest.mark.parametrize("device, fragment", [
    ({"iccid": "123", "topic": "bad"}, "devices[1] (ICCID 123): topic must be empty or start with '/'"),
    ({"iccid": "123", "qos": 2}, "devices[1] (ICCID 123): qos must be 0 or 1"),
    ({"iccid": "123", "payload": ""}, "devices[1] (ICCID 123): payload must not be empty"),
    ({"iccid": "12a"}, "devices[1] (ICCID 12a): iccid must contain digits only"),
    ("1" * 23, "devices[1] (ICCID 11111111111111111111111): iccid must have at most 22 digits"),
    (True, "devices[1] (ICCID ?): iccid must be a string of digits"),
])
def test_bad_device_error_names_index_and_iccid(device, fragment):
    with pytest.raises(DownlinkInputError) as info:
        build_batch(ORG, ["1", device, "3"], DEFAULTS)
    assert str(info.value).startswith(fragment)


def test_batch_without_any_message_is_refused_naming_the_device():
    with pytest.raises(DownlinkInputError, match=r"^devices\[0\] \(ICCID 1\): no payload"):
        build_batch(ORG, ["1"], {**DEFAULTS, "payload": None})


def test_batch_without_task_message_is_fine_when_every_device_has_one():
    downlinks = build_batch(ORG, [{"iccid": "1", "payload": "a"}, {"iccid": "2", "payload": "b"}],
                            {**DEFAULTS, "payload": None})
    assert [d.body["Message"] for d in downlinks] == ["a", "b"]


def test_empty_devices_is_an_empty_batch():
    assert build_batch("mti", [], {"payload": "x"}) == []


@pytest.mark.parametrize("devices, fragment", [("1", "must be a list"), ({"iccid": "1"}, "must be a list")])
def test_devices_must_be_a_non_empty_list(devices, fragment):
    with pytest.raises(DownlinkInputError, match=fragment):
        build_batch(ORG, devices, DEFAULTS)


def test_bad_device_late_in_a_long_list_fails_the_whole_batch():
    devices = [str(n) for n in range(1, 10_000)] + ["bad"]
    with pytest.raises(DownlinkInputError, match=r"^devices\[9999\] \(ICCID bad\)"):
        build_batch(ORG, devices, DEFAULTS)


def test_same_iccid_may_appear_several_times_in_order():
    downlinks = build_batch(ORG, [{"iccid": "1", "payload": "config"}, {"iccid": "1", "payload": "reboot"}], DEFAULTS)
    assert [d.body["Message"] for d in downlinks] == ["config", "reboot"]


# --- digest ------------------------------------------------------------------

BASE_BODY = {"ICCID": ICCID, "Topic": "/c", "Message": "m", "QoS": 0, "Format": 1}


def test_digest_is_stable_for_equal_input():
    assert downlink_digest(ORG, dict(BASE_BODY)) == downlink_digest(ORG, dict(BASE_BODY))
    assert len(downlink_digest(ORG, BASE_BODY)) == 64


def test_digest_ignores_key_order_of_the_body():
    assert downlink_digest(ORG, dict(reversed(list(BASE_BODY.items())))) == downlink_digest(ORG, BASE_BODY)


@pytest.mark.parametrize("org, change", [
    ("other", {}),
    (ORG, {"ICCID": "8988280666000000002"}),
    (ORG, {"Topic": "/d"}),
    (ORG, {"Message": "n"}),
    (ORG, {"QoS": 1}),
    (ORG, {"Format": 0}),
    (ORG, {"RetainLastMessage": True}),
    (ORG, {"RetainLastMessage": False}),
])
def test_digest_differs_when_any_identity_field_differs(org, change):
    assert downlink_digest(org, {**BASE_BODY, **change}) != downlink_digest(ORG, BASE_BODY)


def test_digest_does_not_depend_on_the_api_key():
    # The digest is computed from the org and the body alone: nothing secret
    # goes into the journal, and a rotated key does not resend everything.
    import inspect
    assert list(inspect.signature(downlink_digest).parameters) == ["org_id", "body"]


def test_digest_fields_cannot_be_shifted_into_each_other():
    a = {**BASE_BODY, "Topic": "/a", "Message": "b"}
    b = {**BASE_BODY, "Topic": "/a\",\"b", "Message": ""}
    assert downlink_digest(ORG, a) != downlink_digest(ORG, b)


# --- properties --------------------------------------------------------------

@settings(max_examples=150, deadline=None)
@given(any_text)
def test_any_string_iccid_validates_or_raises_input_error(value):
    try:
        iccid = normalise_iccid(value)
    except DownlinkInputError:
        return
    assert iccid.isascii() and iccid.isdigit() and 1 <= len(iccid) <= 22


@settings(max_examples=150, deadline=None)
@given(any_text)
@example("/\ud800")
def test_any_string_topic_validates_or_raises_input_error(value):
    try:
        validate_topic(value, ORG, ICCID)
    except DownlinkInputError:
        pass


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=600).map(lambda s: "/" + s), st.sampled_from(["1", SHORT_ICCID, ICCID, "9" * 22]))
def test_any_accepted_topic_fits_in_512_bytes_whole(value, iccid):
    try:
        topic = validate_topic(value, ORG, iccid)
    except DownlinkInputError:
        return
    assert len(f"/{ORG}/{iccid}/sub{topic}".encode("utf-8")) <= 512


@settings(max_examples=150, deadline=None)
@given(any_text, st.sampled_from([None, "json", "text"]))
def test_any_string_message_validates_or_raises_input_error(value, fmt):
    try:
        text, code = serialise_payload(value, fmt)
    except DownlinkInputError:
        return
    assert 1 <= len(text.encode("utf-8")) <= 4096
    assert code in (0, 1)


@settings(max_examples=100, deadline=None)
@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
))
def test_any_json_like_message_validates_or_raises_input_error(value):
    try:
        text, code = serialise_payload(value, None)
    except DownlinkInputError:
        return
    if isinstance(value, (dict, list)):
        assert code == 0
        json.loads(text)
