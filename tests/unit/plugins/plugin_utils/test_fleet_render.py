# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""build_downlinks and its helpers, called as fleet_push_run calls them: one batch at a time.

The render_each lookup tests cover the message rules through the lookup (a
whole list at once); these cover what a batch adds: ``positions``, so that
an error names the device by its place in the whole fleet, and the helpers.
"""

from __future__ import annotations

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from ansible_collections.monoz.link.plugins.plugin_utils._fleet_render import (
    FleetInputError,
    MessageSettings,
    build_downlinks,
    device_dict,
    find_in_search_path,
)


def iccid(index: int) -> str:
    return f"89882806660000{index:05d}"


def devices(count: int, first: int = 0, **extra) -> list:
    return [{"iccid": iccid(index), **extra} for index in range(first, first + count)]


@pytest.fixture
def templar():
    return Templar(loader=DataLoader(), variables={})


@pytest.fixture
def template(tmp_path):
    (tmp_path / "templates").mkdir()

    def write(text: str, name: str = "t.j2") -> str:
        path = tmp_path / "templates" / name
        path.write_text(text, encoding="utf-8")
        return str(path)

    return write


def build(templar, tmp_path, batch, first_index=0, variables=None, **settings):
    """build_downlinks for a batch whose first device is at ``first_index`` in the fleet."""
    variables = {"ansible_search_path": [str(tmp_path)], **(variables or {})}
    positions = range(first_index, first_index + len(batch))
    return build_downlinks(templar, MessageSettings(**settings), batch, variables, positions)


# -- the message -------------------------------------------------------------------------

@pytest.mark.parametrize("payload, fmt, expected", [
    ('{"a": 1e3}', None, {"format": "json"}),
    ("[1, 2]\n", None, {"format": "json"}),
    ('{"a": NaN}', None, {}),
    ("[ALERT] reboot", None, {}),
    ('{"a": 1}', "text", {}),
    ("reboot", "json", None),
    ({"apn": "iot"}, None, {}),
    (["a", 1], None, {}),
])
def test_the_format_rule_for_a_payload(templar, tmp_path, payload, fmt, expected):
    if expected is None:
        with pytest.raises(FleetInputError, match=r"devices\[0\] \(ICCID 8988280666000000000\): payload is not valid"
                                                  r" JSON but format is json"):
            build(templar, tmp_path, devices(1), payload=payload, format=fmt)
        return
    result = build(templar, tmp_path, devices(2), payload=payload, format=fmt)
    # The task's own format is the module's to apply; only the rule's choice is added.
    assert result == [{"iccid": iccid(index), "payload": payload, **expected} for index in range(2)]


def test_a_device_format_overrides_the_rule_and_the_task_format(templar, tmp_path):
    batch = [{"iccid": iccid(0), "format": "text"}, {"iccid": iccid(1), "format": ""}, {"iccid": iccid(2)}]
    result = build(templar, tmp_path, batch, payload='{"a": 1}')
    assert [item.get("format") for item in result] == ["text", "json", "json"]


def test_device_overrides_are_passed_on_empty_ones_dropped_and_other_keys_left_behind(templar, tmp_path):
    batch = [
        {"iccid": iccid(0), "topic": "/cfg", "qos": "1", "retain": "yes", "apn": "iot", "inventory_hostname": "d0"},
        {"iccid": iccid(1), "topic": "", "qos": None, "retain": ""},
        {"iccid": iccid(2), "qos": 0, "retain": False},
    ]
    result = build(templar, tmp_path, batch, payload="x", topic="/default", qos=1)
    assert result == [
        {"iccid": iccid(0), "payload": "x", "topic": "/cfg", "qos": "1", "retain": "yes"},
        {"iccid": iccid(1), "payload": "x"},
        {"iccid": iccid(2), "payload": "x", "qos": 0, "retain": False},
    ]


def test_a_template_is_rendered_once_per_device_with_the_play_variables(templar, tmp_path, template):
    path = template('{"apn": "{{ device.apn }}", "n": {{ n }}, "id": "{{ device.iccid }}"}\n\n')
    result = build(templar, tmp_path, devices(3, first=1000, apn="iot"), 1000, {"n": 7}, template=path)
    assert result == [{"iccid": iccid(index), "payload": f'{{"apn": "iot", "n": 7, "id": "{iccid(index)}"}}',
                       "format": "json"} for index in range(1000, 1003)]


def test_device_values_are_data_not_templates(templar, tmp_path, template):
    # A CSV cell that holds template syntax is sent as written.
    path = template("apn={{ device.apn }}")
    result = build(templar, tmp_path, devices(1, apn="{{ 6 * 7 }}"), template=path)
    assert result == [{"iccid": iccid(0), "payload": "apn={{ 6 * 7 }}"}]


def test_a_template_may_include_another_from_the_templates_directory(templar, tmp_path, template):
    template("[{{ device.iccid[-1] }}]", name="part.j2")
    path = template('{% include "part.j2" %} ok')
    assert [item["payload"] for item in build(templar, tmp_path, devices(2), template=path)] == ["[0] ok", "[1] ok"]


def test_an_empty_batch_builds_nothing(templar, tmp_path, template):
    assert build(templar, tmp_path, [], 500, template=template("{{ nope.nope }}")) == []
    assert build(templar, tmp_path, [], 500, payload="x") == []


# -- errors name the device by its place in the whole fleet --------------------------------------

@pytest.mark.parametrize("bad, settings, index, message", [
    ({"topic": "config"}, {"payload": "x"}, 2003, "topic must be empty or start with '/', got 'config'"),
    ({"qos": "2"}, {"payload": "x"}, 2003, "qos must be 0 or 1, got '2'"),
    ({"retain": "maybe"}, {"payload": "x"}, 2003, "retain must be a boolean"),
    ({"format": "xml"}, {"payload": "x"}, 2003, "format must be one of json, text; got 'xml'"),
    # A bad task setting fails on the batch's first device.
    ({}, {"payload": "x", "topic": "/" + "t" * 70000}, 2000, "topic is too long"),
])
def test_a_bad_device_in_a_later_batch_is_named_by_its_index_in_the_fleet(templar, tmp_path, bad, settings, index,
                                                                          message):
    batch = devices(5, first=2000)
    batch[3].update(bad)
    with pytest.raises(FleetInputError) as caught:
        build(templar, tmp_path, batch, 2000, **settings)
    assert str(caught.value).startswith(f"devices[{index}] (ICCID {iccid(index)}): {message}")


def test_a_rendered_message_that_breaks_the_rules_is_named_by_its_index_in_the_fleet(templar, tmp_path, template):
    path = template('{% if device.iccid.endswith("7") %}{"a": }{% else %}{"a": 1}{% endif %}')
    with pytest.raises(FleetInputError, match=r"^devices\[1007\] \(ICCID 8988280666000001007\): payload is not valid"
                                              r" JSON but format is json"):
        build(templar, tmp_path, devices(10, first=1000), 1000, template=path, format="json")


def test_an_empty_rendered_message_is_named(templar, tmp_path, template):
    path = template("{% if device.iccid.endswith('2') %}  \n{% else %}x{% endif %}")
    with pytest.raises(FleetInputError, match=r"^devices\[502\] \(ICCID 8988280666000000502\): payload must not be"
                                              r" empty"):
        build(templar, tmp_path, devices(5, first=500), 500, template=path)


def test_a_template_that_fails_for_one_device_names_it_by_its_index_in_the_fleet(templar, tmp_path, template):
    path = template("{{ device.apn | upper }}")
    batch = devices(4, first=3000, apn="a")
    del batch[2]["apn"]
    with pytest.raises(FleetInputError, match=r"^devices\[3002\] \(ICCID 8988280666000003002\): rendering t.j2"
                                              r" failed"):
        build(templar, tmp_path, batch, 3000, template=path)


def test_the_whole_topic_is_checked_with_the_task_org_id(templar, tmp_path):
    # The topic limit counts "/<org_id>/<iccid>/sub<topic>": a longer org_id leaves less room.
    topic = "/" + "t" * 200
    assert build(templar, tmp_path, devices(1), payload="x", topic=topic, org_id="O")
    with pytest.raises(FleetInputError, match="topic is too long"):
        build(templar, tmp_path, devices(1), payload="x", topic=topic * 300, org_id="O" * 100)


# -- the helpers -------------------------------------------------------------------------------

def test_device_dict_copies_and_normalises_the_iccid():
    original = {"iccid": int(iccid(5)), "apn": "a"}
    assert device_dict(5, original) == {"iccid": iccid(5), "apn": "a"}
    assert original["iccid"] == int(iccid(5))


@pytest.mark.parametrize("device, message", [
    ({"apn": "a"}, r"devices\[12\] must be a dict with an iccid key"),
    (iccid(1), r"devices\[12\] must be a dict with an iccid key"),
    ({"iccid": "12-34"}, r"devices\[12\]: iccid must contain digits only"),
])
def test_device_dict_names_a_bad_device(device, message):
    with pytest.raises(FleetInputError, match=message):
        device_dict(12, device)


def test_find_in_search_path_looks_in_the_subdirectory_then_the_root(tmp_path):
    loader = DataLoader()
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.csv").write_text("iccid\n")
    (tmp_path / "b.csv").write_text("iccid\n")
    variables = {"ansible_search_path": [str(tmp_path)]}
    assert find_in_search_path(loader, variables, "files", "a.csv") == str(tmp_path / "files" / "a.csv")
    assert find_in_search_path(loader, variables, "files", "b.csv") == str(tmp_path / "b.csv")
    assert find_in_search_path(loader, variables, "files", "nope.csv") is None
    # Without a search path, the playbook directory.
    assert find_in_search_path(loader, {"playbook_dir": str(tmp_path)}, "files", "a.csv") == str(
        tmp_path / "files" / "a.csv")


def test_one_payload_is_checked_per_iccid_length_so_a_longer_iccid_still_fails_the_topic_limit(templar, tmp_path):
    # "/ORG/" + ICCID + "/sub" + topic: with 19 digits the topic fits in 512 bytes, with 20 it does not.
    topic = "/" + "t" * (512 - len("/ORG/") - 19 - len("/sub") - 1)
    devices = [{"iccid": "8988280666000000%03d" % index} for index in range(5)] + [{"iccid": "89882806660000000099"}]
    with pytest.raises(FleetInputError, match=r"devices\[5\] \(ICCID 89882806660000000099\): topic is too long"):
        build(templar, tmp_path, devices, payload="x", topic=topic, org_id="ORG")
    # Without the longer ICCID the same fleet passes.
    assert len(build(templar, tmp_path, devices[:5], payload="x", topic=topic, org_id="ORG")) == 5
