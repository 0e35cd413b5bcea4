# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Turn device dicts into checked downlinks, rendering a template once per device.

Private to the monoz.link collection: not a public API, it may change without notice.

Shared by the render_each lookup (a whole list at once) and the fleet_push
role's fleet_push_run action (one batch at a time, so a fleet is never held
whole).  Errors are ``FleetInputError`` naming the device; each caller turns
them into its own kind of Ansible error.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from ansible.errors import AnsibleError

from ansible_collections.monoz.link.plugins.module_utils._downlink_input import (
    DownlinkInputError,
    build_downlink,
    normalise_iccid,
)
from ansible_collections.monoz.link.plugins.plugin_utils._compat import as_data, trust_as_template

# Per-device settings a device dict may carry that are passed on to the module.
OVERRIDES = ("topic", "qos", "format", "retain")


class FleetInputError(ValueError):
    """A device or message that must not be sent; the message names it."""


def _refuse_constant(name: str):
    # Python's json accepts NaN and Infinity; JSON (RFC 8259) and the API do not.
    raise ValueError(name)


def is_json_container(text: str) -> bool:
    """Whether ``text`` is a valid JSON object or array (the format rule)."""
    if text.lstrip()[:1] not in ("{", "["):
        return False
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return False
    return True


def find_in_search_path(loader, variables: dict, subdir: str, needle: str) -> str | None:
    """``needle`` looked up like a lookup plugin's file: the role's and play's ``subdir``, then their roots."""
    paths = variables.get("ansible_search_path") or [variables.get("playbook_dir") or os.getcwd()]
    try:
        found = loader.path_dwim_relative_stack(paths, subdir, needle)
    except AnsibleError:
        return None
    return found if found and os.path.exists(found) else None


def device_dict(index: int, device) -> dict:
    """A copy of one device dict with its ICCID normalised."""
    if not isinstance(device, Mapping) or "iccid" not in device:
        raise FleetInputError(f"devices[{index}] must be a dict with an iccid key")
    device = dict(device)
    try:
        device["iccid"] = normalise_iccid(device["iccid"], f"devices[{index}]: iccid")
    except DownlinkInputError as exc:
        raise FleetInputError(str(exc)) from None
    return device


@dataclass(frozen=True)
class MessageSettings:
    """How every device's downlink is built: exactly one of ``template`` (a found path) and ``payload``.

    ``org_id``, ``topic`` and ``qos`` are the task's, used to check each
    device's whole topic and QoS before anything is sent.
    """

    template: str | None = None
    payload: object = None
    format: str | None = None
    org_id: str = "ORG"
    topic: str = ""
    qos: int | None = 0


def render_template(templar, path: str, devices: list, variables: dict, positions=None) -> list:
    """The template at ``path`` rendered once per device, in one Jinja run over the list.

    Rendering through the public Templar API compiles the template on every
    call; a single wrapper template that includes the user's template in a
    loop compiles it once (Jinja caches the include).  Every device's text
    starts with a random separator, so the whole output is never a Python or
    JSON literal that the templar could turn into a native value: each
    message comes back as the exact text rendered.  ``positions`` are the
    devices' places in the whole fleet, to name a failing one (default: 0, 1, ...).
    """
    if not devices:
        return []
    # Includes and imports resolve like ansible.builtin.template: next to the
    # template first, then the templates/ directories of the search path.
    searchpath = [os.path.dirname(path)]
    for base in variables.get("ansible_search_path", []):
        searchpath.extend((os.path.join(base, "templates"), base))
    separator = f"\x1e{uuid.uuid4().hex}\x1e"
    context = dict(variables)
    context.update(__fleet_push_devices=devices, __fleet_push_separator=separator)
    wrapper_templar = templar.copy_with_new_env(available_variables=context, searchpath=searchpath)
    wrapper = trust_as_template(
        "{%- for device in __fleet_push_devices -%}"
        "{{ __fleet_push_separator }}"
        "{% include " + json.dumps(os.path.basename(path)) + " %}"
        "{%- endfor -%}"
    )
    try:
        rendered = wrapper_templar.template(wrapper, escape_backslashes=False)
    except AnsibleError:
        _name_the_failing_device(wrapper_templar, path, devices, context, positions or range(len(devices)))
        raise
    messages = str(rendered).split(separator)
    if len(messages) != len(devices) + 1 or messages[0]:
        raise FleetInputError(
            f"rendering {os.path.basename(path)} gave {len(messages) - 1} messages for {len(devices)} devices"
        )
    # Surrounding whitespace of a template is layout, not message.
    return [text.strip() for text in messages[1:]]


def _name_the_failing_device(templar, path: str, devices: list, context: dict, positions) -> None:
    """After a failed bulk render, render one device at a time to name the device that fails."""
    with open(path, encoding="utf-8") as handle:
        source = trust_as_template(handle.read())
    for position, device in zip(positions, devices):
        context["device"] = device
        templar.available_variables = context
        try:
            templar.template(source, escape_backslashes=False)
        except AnsibleError as exc:
            raise FleetInputError(
                f"devices[{position}] (ICCID {device['iccid']}): rendering {os.path.basename(path)}"
                f" failed: {exc}"
            ) from None


def build_downlinks(templar, settings: MessageSettings, devices: list, variables: dict, positions=None) -> list:
    """One checked downlink dict per device (``{iccid, payload}`` plus the device's own overrides).

    ``devices`` are normalised device dicts; ``positions`` are their places
    in the whole fleet (default: 0, 1, ...), so that errors name the right device.
    """
    positions = list(range(len(devices))) if positions is None else positions
    templated = settings.template is not None
    if templated:
        # The devices' values are data: a CSV cell holding "{{ ... }}" is sent as written.
        messages = render_template(templar, settings.template, as_data(devices), variables, positions)
    else:
        messages = [settings.payload] * len(devices)
        payload_is_json = isinstance(settings.payload, str) and is_json_container(settings.payload)
    # With one payload for all, a device's check depends only on the length of
    # its (already normalised) ICCID, which the topic limit counts, and on its
    # own settings: each distinct combination is checked once.
    checked = set()
    downlinks = []
    for position, device, message in zip(positions, devices, messages):
        iccid = device["iccid"]
        overrides = {key: device[key] for key in OVERRIDES if device.get(key) not in (None, "")}
        fmt = overrides.get("format", settings.format)
        if fmt is None and isinstance(message, str) and (is_json_container(message) if templated else payload_is_json):
            fmt = overrides["format"] = "json"
        combination = None if templated else _hashable((len(iccid), fmt, tuple(sorted(overrides.items()))))
        if combination is None or combination not in checked:
            try:
                build_downlink(
                    settings.org_id, iccid, message, fmt,
                    overrides.get("topic", settings.topic),
                    overrides.get("qos", settings.qos), overrides.get("retain"),
                    prefix=f"devices[{position}] (ICCID {iccid}): ",
                )
            except DownlinkInputError as exc:
                raise FleetInputError(str(exc)) from None
            if combination is not None:
                checked.add(combination)
        downlinks.append({"iccid": iccid, "payload": message, **overrides})
    return downlinks


def _hashable(key: tuple):
    """``key``, or None when a device's setting cannot be a set member (then it is simply checked)."""
    try:
        hash(key)
    except TypeError:
        return None
    return key
