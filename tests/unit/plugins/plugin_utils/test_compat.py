# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""_compat: the one place that handles what differs between ansible-core 2.16 and 2.21 (run on every core)."""

from __future__ import annotations

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.parsing.dataloader import DataLoader
from ansible.parsing.yaml.objects import AnsibleMapping, AnsibleSequence, AnsibleUnicode
from ansible.release import __version__ as ANSIBLE_VERSION
from ansible.template import Templar
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.monoz.link.plugins.plugin_utils._compat import (
    HAS_TEMPLATE_TRUST,
    module_args,
    trust_as_template,
)

CORE = tuple(int(part) for part in ANSIBLE_VERSION.split(".")[:2])


def render(value, **variables):
    return Templar(loader=DataLoader(), variables=variables).template(value)


def loaded_args():
    """Task arguments as a playbook's YAML and the templar hand them to an action plugin."""
    return AnsibleMapping({
        AnsibleUnicode("qos"): AnsibleUnicode("high"),
        AnsibleUnicode("payload"): wrap_var("from a CSV {{ not rendered }}"),
        AnsibleUnicode("devices"): AnsibleSequence([AnsibleUnicode("8988"), wrap_var({"iccid": "8989"})]),
        AnsibleUnicode("retries"): 3,
    })


# --- trust_as_template ----------------------------------------------------------

def test_template_trust_is_detected_exactly_on_the_cores_that_have_it():
    assert HAS_TEMPLATE_TRUST is (CORE >= (2, 19))


def test_a_trusted_template_renders_on_every_core():
    assert str(render(trust_as_template("{{ devices | length * 2 }}"), devices=["1", "2", "3"])) == "6"


def test_a_trusted_template_keeps_its_text():
    source = "{% for d in devices %}{{ d }};{% endfor %}"
    assert str(trust_as_template(source)) == source
    assert render(trust_as_template(source), devices=["a", "b"]) == "a;b;"


def test_before_2_19_the_value_itself_comes_back_and_since_2_19_a_plain_string_is_not_rendered():
    source = "{{ 40 + 2 }}"
    if HAS_TEMPLATE_TRUST:
        # why the shim exists: without the tag, 2.19+ hands the text back as it is
        assert render(source) == source
        from ansible.template import is_trusted_as_template

        assert is_trusted_as_template(trust_as_template(source))
        assert not is_trusted_as_template(source)
    else:
        assert trust_as_template(source) is source
        assert str(render(source)) == "42"


# --- module_args ------------------------------------------------------------------

def test_module_args_keep_every_value():
    assert module_args(loaded_args()) == {
        "qos": "high",
        "payload": "from a CSV {{ not rendered }}",
        "devices": ["8988", {"iccid": "8989"}],
        "retries": 3,
    }


def test_module_args_validation_message_names_str_like_a_module_process():
    validation = ArgumentSpecValidator({"qos": {"type": "int"}}).validate(dict(module_args({"qos": wrap_var("high")})))
    message = " ".join(validation.error_messages)
    assert "qos" in message
    assert "Ansible" not in message, message  # no AnsibleUnicode / AnsibleUnsafeText / _AnsibleTagged...
    assert "str" in message


def test_before_2_19_module_args_are_built_in_types_and_since_2_19_the_same_object():
    args = loaded_args()
    converted = module_args(args)
    if HAS_TEMPLATE_TRUST:
        assert converted is args  # no copy of a fleet-sized list where none is needed
    else:
        # exact classes, not isinstance: the subclasses are what must go
        assert converted.__class__ is dict
        assert converted["qos"].__class__ is str
        assert converted["payload"].__class__ is str  # AnsibleUnsafeText's __str__ returns itself
        assert converted["devices"].__class__ is list
        assert [device.__class__ for device in converted["devices"]] == [str, dict]
        assert converted["devices"][1]["iccid"].__class__ is str
