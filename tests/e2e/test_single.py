"""Single-device downlinks: what the device receives over MQTT, and what the task returns."""

from __future__ import annotations

import json

from e2e_support import ANSIBLE_CORE, API_KEY, ORG, iccid

SUCCESS = {"Error": False, "StatusCode": 200, "Message": "MessagePublished"}


def device_topic(device: str, suffix: str = "") -> str:
    return f"/{ORG}/{device}/sub{suffix}"


def test_single_text_downlink_reaches_device_on_default_topic(emu, ansible, execution):
    device = iccid(1)
    run = ansible.downlink([{"iccid": device, "payload": "hello device"}], {"default": emu.profile()})

    assert run.rc == 0, run.describe()
    result = run.call(0)
    assert result["changed"] is True
    assert result["failed"] is False
    assert result["status_code"] == 200
    assert result["response"] == SUCCESS
    assert result["attempts"] == 1
    assert result["request"] == {"ICCID": device, "Topic": "", "Message": "hello device", "QoS": 0, "Format": 1}
    # The API saw exactly that request (the emulator logs what it accepted).
    [logged] = emu.messages()
    assert (logged["iccid"], logged["topic"], logged["message"], logged["qos"], logged["format"], logged["retain"]) == (
        device, "", "hello device", 0, 1, False,
    )
    assert emu.stats()["requests"] == 1
    received = emu.received_exactly(device, 1)
    assert received == [{"topic": device_topic(device), "payload": "hello device", "qos": 0, "retain": False}]


def test_dict_message_is_sent_as_compact_json_with_format_0(emu, ansible, execution):
    device = iccid(2)
    message = {"apn": "iot.example", "interval": 300, "site": "Zürich", "flags": [1, 2]}
    compact = '{"apn":"iot.example","interval":300,"site":"Zürich","flags":[1,2]}'
    run = ansible.downlink([{"iccid": device, "payload": message}], {"default": emu.profile()})

    assert run.rc == 0, run.describe()
    request = run.call(0)["request"]
    assert request == {"ICCID": device, "Topic": "", "Message": compact, "QoS": 0, "Format": 0}
    assert json.loads(request["Message"]) == message
    [logged] = emu.messages()
    assert logged["format"] == 0 and logged["message"] == compact
    received = emu.received_exactly(device, 1)
    assert [m["payload"] for m in received] == [compact]


def test_topic_suffix_and_qos_1_reach_device_as_requested(emu, ansible, execution):
    device = iccid(3)
    run = ansible.downlink(
        [{"iccid": device, "payload": {"apn": "iot.example"}, "topic": "/config/apn", "qos": 1}],
        {"default": emu.profile()},
    )

    assert run.rc == 0, run.describe()
    request = run.call(0)["request"]
    assert (request["Topic"], request["QoS"]) == ("/config/apn", 1)
    received = emu.received_exactly(device, 1)
    assert received == [
        {"topic": device_topic(device, "/config/apn"), "payload": '{"apn":"iot.example"}', "qos": 1, "retain": False}
    ]


def test_retained_message_reaches_a_device_that_subscribes_later(emu, ansible, execution):
    retained_device, plain_device = iccid(4), iccid(5)
    run = ansible.downlink(
        [
            {"iccid": retained_device, "payload": "retained-config", "qos": 1, "retain": True},
            # Control: the same message without retain is not kept by the broker.
            {"iccid": plain_device, "payload": "plain-config", "qos": 1},
        ],
        {"default": emu.profile()},
    )

    assert run.rc == 0, run.describe()
    assert run.call(0)["request"]["RetainLastMessage"] is True
    # retain unset: the key is left out, so older API versions never see it.
    assert "RetainLastMessage" not in run.call(1)["request"]
    assert [m["retain"] for m in emu.messages()] == [True, False]
    assert len(emu.received_exactly(retained_device, 1)) == 1
    late = emu.late_subscribe(retained_device)
    assert late == [{"topic": device_topic(retained_device), "payload": "retained-config", "qos": 1, "retain": True}]
    assert emu.late_subscribe(plain_device) == []


def test_crlf_stripped_from_json_message_and_kept_in_text(emu, ansible, execution):
    json_device, text_device = iccid(6), iccid(7)
    json_message = '{"cmd": "set",\r\n "apn": "iot"}\r\n'
    text_message = "line1\r\nline2\n"
    run = ansible.downlink(
        [
            {"iccid": json_device, "payload": json_message, "format": "json"},
            {"iccid": text_device, "payload": text_message, "format": "text"},
        ],
        {"default": emu.profile()},
    )

    assert run.rc == 0, run.describe()
    # The module sends the string as given; stripping is the service's job.
    # Before ansible-core 2.19, Ansible itself turns JSON-looking text that
    # comes out of a template (the playbook's "{{ item.payload }}") into a
    # dict, which the module then sends as compact JSON.
    sent_json = json_message if ANSIBLE_CORE >= (2, 19) else '{"cmd":"set","apn":"iot"}'
    assert run.call(0)["request"]["Message"] == sent_json
    assert run.call(0)["request"]["Format"] == 0
    assert run.call(1)["request"]["Message"] == text_message
    assert run.call(1)["request"]["Format"] == 1
    assert [m["payload"] for m in emu.received_exactly(json_device, 1)] == [sent_json.replace("\r\n", "")]
    assert [m["payload"] for m in emu.received_exactly(text_device, 1)] == [text_message]


def test_check_mode_sends_nothing_and_reports_the_request(emu, ansible, execution):
    device = iccid(8)
    run = ansible.downlink(
        [{"iccid": device, "payload": {"apn": "iot.example"}, "topic": "/config", "qos": 1}],
        {"default": emu.profile()},
        check=True,
    )

    assert run.rc == 0, run.describe()
    result = run.call(0)
    assert result["changed"] is True
    assert result["request"] == {
        "ICCID": device, "Topic": "/config", "Message": '{"apn":"iot.example"}', "QoS": 1, "Format": 0,
    }
    assert result["attempts"] == 0
    assert "status_code" not in result
    assert emu.stats()["requests"] == 0
    assert emu.messages() == []
    assert emu.received_exactly(device, 0) == []


def test_environment_fallbacks_supply_org_key_and_url(emu, ansible, execution):
    device = iccid(9)
    env = {"MONOZ_ORG_ID": ORG, "MONOZ_API_KEY": API_KEY, "MONOZ_API_URL": emu.api_url}
    # The default profile is empty: the task names no connection option.
    run = ansible.downlink([{"iccid": device, "payload": "from-env"}], {"default": {}}, env=env)

    assert run.rc == 0, run.describe()
    assert run.call(0)["status_code"] == 200
    assert [m["payload"] for m in emu.received_exactly(device, 1)] == ["from-env"]


def test_environment_fallback_absent_fails_naming_the_option(emu, ansible, execution):
    run = ansible.downlink([{"iccid": iccid(9), "payload": "nowhere"}], {"default": {}})

    assert run.rc != 0, run.describe()
    assert run.call(0)["failed"] is True
    assert "org_id" in run.call(0)["msg"] and "api_key" in run.call(0)["msg"], run.call(0)["msg"]
    assert emu.stats()["requests"] == 0


def test_module_defaults_group_supplies_credentials(emu, ansible, execution):
    device = iccid(10)
    run = ansible.run(
        "module_defaults.yml",
        {"e2e_org_id": ORG, "e2e_api_key": API_KEY, "e2e_api_url": emu.api_url,
         "e2e_iccid": device, "e2e_message": "from-module-defaults"},
    )

    assert run.rc == 0, run.describe()
    assert run.result["status_code"] == 200
    assert run.result["request"]["ICCID"] == device
    assert [m["payload"] for m in emu.received_exactly(device, 1)] == ["from-module-defaults"]
