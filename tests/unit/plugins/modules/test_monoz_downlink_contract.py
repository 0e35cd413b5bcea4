# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The downlink option is `payload`: `message` is a name ansible-core reserves, so it is no option or alias."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.monoz.link.plugins.module_utils._downlink_args import downlink_module_kwargs


def _validate(args: dict):
    kwargs = downlink_module_kwargs()
    kwargs.pop("supports_check_mode")
    return ArgumentSpecValidator(**kwargs).validate(args)


def test_payload_is_the_option_and_message_is_neither_option_nor_alias():
    spec = downlink_module_kwargs()["argument_spec"]
    assert spec["payload"]["type"] == "raw"
    assert "message" not in spec
    assert all("message" not in option.get("aliases", ()) for option in spec.values())


def test_message_is_refused_as_an_unsupported_parameter():
    validation = _validate({"org_id": "O", "api_key": "k", "iccid": "1", "message": "x"})
    assert "message" in validation.unsupported_parameters


def test_payload_is_accepted():
    validation = _validate({"org_id": "O", "api_key": "k", "iccid": "1", "payload": {"apn": "iot"}})
    assert not validation.error_messages
    assert validation.validated_parameters["payload"] == {"apn": "iot"}
