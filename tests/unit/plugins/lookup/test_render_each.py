# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The render_each lookup: one downlink per device, each message exactly as rendered or given."""

from __future__ import annotations

import pytest

from ansible.errors import AnsibleLookupError

from ansible_collections.monoz.link.plugins.plugin_utils._fleet_render import is_json_container

ICCIDS = ["8988280666000000001", "8988280666000000002", "8988280666000000003"]


@pytest.fixture
def play_dir(tmp_path):
    (tmp_path / "templates").mkdir()
    return tmp_path


@pytest.fixture
def render(load_lookup):
    def run(play_dir, devices, variables=None, **options):
        """Run the lookup as the role's query() does, with the play directory on the search path."""
        variables = {"ansible_search_path": [str(play_dir)], **(variables or {})}
        return load_lookup("render_each", play_dir, variables).run([devices], variables=variables, **options)
    return run


def template(play_dir, text: str, name: str = "t.j2") -> str:
    (play_dir / "templates" / name).write_text(text, encoding="utf-8")
    return name


def devices(*extra: dict) -> list:
    return [{"iccid": iccid, **(extra[index] if index < len(extra) else {})} for index, iccid in enumerate(ICCIDS)]


def test_a_rendered_json_template_goes_out_exactly_as_rendered(play_dir, render):
    # Python's json would turn 1e3 into 1000.0, 1.50 into 1.5 and keep one "a".
    name = template(play_dir, '{"a": 1e3, "a": 2, "b": 1.50, "id": "{{ device.iccid }}", "e": "\\u00e9"}\n')
    result = render(play_dir, devices(), template=name)
    assert result == [
        {"iccid": iccid, "payload": f'{{"a": 1e3, "a": 2, "b": 1.50, "id": "{iccid}", "e": "\\u00e9"}}',
         "format": "json"}
        for iccid in ICCIDS
    ]


def test_a_single_device_template_stays_text_and_is_not_turned_into_a_native_value(play_dir, render):
    name = template(play_dir, '{"n": 1e3, "list": [1, 2]}')
    result = render(play_dir, devices()[:1], template=name)
    assert result == [{"iccid": ICCIDS[0], "payload": '{"n": 1e3, "list": [1, 2]}', "format": "json"}]
    assert isinstance(result[0]["payload"], str)


def test_a_template_keeps_its_inner_layout_and_loses_only_surrounding_whitespace(play_dir, render):
    name = template(play_dir, '{# header #}\n\n{\n  "id": "{{ device.iccid }}",\n  "x": [ 1 ,2 ]\n}\n\n')
    result = render(play_dir, devices()[:2], template=name)
    assert [item["payload"] for item in result] == [
        f'{{\n  "id": "{iccid}",\n  "x": [ 1 ,2 ]\n}}' for iccid in ICCIDS[:2]
    ]


def test_per_device_variables_reach_the_template_in_input_order(play_dir, render):
    name = template(play_dir, "apn={{ device.apn }} ttl={{ ttl }}")
    result = render(play_dir, devices({"apn": "a"}, {"apn": "b"}, {"apn": "c"}), {"ttl": 60}, template=name)
    assert result == [{"iccid": iccid, "payload": f"apn={apn} ttl=60"} for iccid, apn in zip(ICCIDS, "abc")]


def test_text_that_is_not_a_json_container_goes_out_as_text(play_dir, render):
    name = template(play_dir, "[ALERT] reboot {{ device.iccid[-1] }}")
    assert [item.get("format") for item in render(play_dir, devices(), template=name)] == [None] * 3


def test_with_format_text_a_json_looking_message_is_not_marked_json(play_dir, render):
    name = template(play_dir, '{"a": 1}')
    result = render(play_dir, devices()[:1], template=name, format="text")
    assert result == [{"iccid": ICCIDS[0], "payload": '{"a": 1}'}]


def test_with_format_json_invalid_json_fails_naming_the_device(play_dir, render):
    name = template(play_dir, '{% if device.iccid.endswith("2") %}{"a": }{% else %}{"a": 1}{% endif %}')
    with pytest.raises(AnsibleLookupError, match=r"devices\[1\] \(ICCID 8988280666000000002\): payload is not valid"
                                                 r" JSON but format is json"):
        render(play_dir, devices(), template=name, format="json")


@pytest.mark.parametrize("text, expected", [
    ('{"a": 1}', True), ("  [1, 2]", True), ('{"a": NaN}', False), ('{"a": }', False), ("[ALERT]", False),
    ('"a string"', False), ("42", False), ("", False),
])
def test_the_format_rule_takes_only_a_valid_json_object_or_array(text, expected):
    assert is_json_container(text) is expected


def test_a_string_payload_is_sent_exactly_as_given(play_dir, render):
    result = render(play_dir, devices(), payload=' {"a": 1e3, "a": 2} ')
    assert result == [{"iccid": iccid, "payload": ' {"a": 1e3, "a": 2} ', "format": "json"} for iccid in ICCIDS]
    assert render(play_dir, devices()[:1], payload="reboot\n") == [{"iccid": ICCIDS[0], "payload": "reboot\n"}]


def test_a_dict_payload_is_left_to_the_module_to_serialise(play_dir, render):
    result = render(play_dir, devices()[:2], payload={"apn": "iot"})
    assert result == [{"iccid": iccid, "payload": {"apn": "iot"}} for iccid in ICCIDS[:2]]


def test_device_overrides_are_passed_on_and_empty_ones_dropped(play_dir, render):
    devs = devices({"topic": "/cfg", "qos": "1", "format": "text", "retain": "true", "apn": "x"},
                   {"topic": "", "qos": None})
    result = render(play_dir, devs, payload='{"a": 1}')
    assert result[0] == {"iccid": ICCIDS[0], "payload": '{"a": 1}', "topic": "/cfg", "qos": "1", "format": "text",
                         "retain": "true"}
    assert result[1] == {"iccid": ICCIDS[1], "payload": '{"a": 1}', "format": "json"}


def test_an_iccid_given_as_a_number_is_normalised(play_dir, render):
    assert render(play_dir, [{"iccid": 8988280666000000001}], payload="x") == [{"iccid": ICCIDS[0], "payload": "x"}]


@pytest.mark.parametrize("bad, message", [
    ({"iccid": "12ab"}, r"devices\[1\]: iccid must contain digits only"),
    ({"name": "no iccid"}, r"devices\[1\] must be a dict with an iccid key"),
    ("8988280666000000002", r"devices\[1\] must be a dict with an iccid key"),
])
def test_a_bad_device_fails_naming_its_index(play_dir, bad, message, render):
    with pytest.raises(AnsibleLookupError, match=message):
        render(play_dir, [{"iccid": ICCIDS[0]}, bad], payload="x")


def test_a_bad_topic_fails_before_anything_is_sent(play_dir, render):
    with pytest.raises(AnsibleLookupError, match=r"devices\[0\] \(ICCID 8988280666000000001\): topic must be empty or"
                                                 r" start with '/'"):
        render(play_dir, devices(), payload="x", topic="config")


def test_a_render_error_names_the_device_that_fails(play_dir, render):
    name = template(play_dir, "{{ device.apn | upper }}")
    with pytest.raises(AnsibleLookupError, match=r"devices\[2\] \(ICCID 8988280666000000003\): rendering t.j2 failed"):
        render(play_dir, devices({"apn": "a"}, {"apn": "b"}), template=name)


def test_a_missing_template_fails_naming_it(play_dir, render):
    with pytest.raises(AnsibleLookupError, match="template 'nope.j2' not found"):
        render(play_dir, devices(), template="nope.j2")


@pytest.mark.parametrize("options", [{}, {"payload": "x", "template": "t.j2"}])
def test_exactly_one_of_template_and_payload(play_dir, options, render):
    with pytest.raises(AnsibleLookupError, match="exactly one of template and payload"):
        render(play_dir, devices(), **options)


def test_an_empty_fleet_renders_nothing(play_dir, render):
    assert render(play_dir, [], template=template(play_dir, "x")) == []
