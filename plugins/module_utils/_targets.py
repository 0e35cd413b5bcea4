# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The devices a task is about: the ``iccid`` and ``devices`` options of every module.

Private to the monoz.link collection: not a public API, it may change without notice.

One job: turn ``iccid`` (one device) or ``devices`` (ICCID strings, or dicts
with an ``iccid`` key) into validated ICCIDs, or raise ``InputError`` naming
the option, and for a list element its index and ICCID.  Nothing here touches
the network, so a bad device in a list of 10,000 stops the task before the
first request.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._errors import InputError

MAX_ICCID_DIGITS = 22  # ITU-T E.118


@dataclass(frozen=True)
class Target:
    """One validated device of a task, with the per-device settings its dict carried."""

    iccid: str
    settings: dict = field(default_factory=dict)


def describe_type(value) -> str:
    return type(value).__name__


def normalise_iccid(value, where: str = "iccid") -> str:
    # YAML turns an unquoted ICCID into an int; accept it, but not a bool,
    # which YAML also produces (and True is an int in Python).
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise InputError(f"{where} must be a string of digits, got {describe_type(value)}")
    iccid = value.strip()
    if not iccid:
        raise InputError(f"{where} must not be empty")
    if not (iccid.isascii() and iccid.isdigit()):
        raise InputError(f"{where} must contain digits only, got {value!r}")
    if len(iccid) > MAX_ICCID_DIGITS:
        raise InputError(
            f"{where} must have at most {MAX_ICCID_DIGITS} digits (ITU-T E.118), got {len(iccid)}"
        )
    return iccid


def device_elements(devices, allowed_keys=None):
    """Yield ``(prefix, raw_iccid, settings)`` for each element of ``devices``, checking its shape.

    ``prefix`` places option names, e.g. ``devices[3] (ICCID 8988...): ``.
    ``allowed_keys`` lists the keys a dict element may carry (a module with
    per-device overrides refuses the rest, so a typo never silently falls back
    to the task's value); None lets any other key through unused, so the
    device list of one module feeds every other.
    """
    if not isinstance(devices, list):
        raise InputError(f"devices must be a list, got {describe_type(devices)}")
    for index, element in enumerate(devices):
        if isinstance(element, dict):
            if allowed_keys is not None:
                unknown = sorted(str(key) for key in element if key not in allowed_keys)
                if unknown:
                    raise InputError(
                        f"devices[{index}] has unknown key(s) {', '.join(unknown)};"
                        f" allowed: {', '.join(allowed_keys)}"
                    )
            if "iccid" not in element:
                raise InputError(f"devices[{index}] has no iccid")
            raw_iccid = element["iccid"]
            settings = {key: value for key, value in element.items() if key != "iccid"}
        else:
            raw_iccid = element
            settings = {}
        label = raw_iccid if isinstance(raw_iccid, (str, int)) and not isinstance(raw_iccid, bool) else "?"
        yield f"devices[{index}] (ICCID {label}): ", raw_iccid, settings


def parse_targets(params: dict, allowed_keys=None) -> list:
    """The task's devices as ``Target``s, in input order; [] when neither option is set.

    ``iccid`` wins when set (the argument spec makes the two exclusive).  An
    empty ``devices`` list is a valid, if dull, fleet: a dynamic query that
    found nothing must not fail the play.
    """
    if params.get("iccid") is not None:
        return [Target(normalise_iccid(params["iccid"]))]
    if params.get("devices") is None:
        return []
    targets = []
    for prefix, raw_iccid, settings in device_elements(params["devices"], allowed_keys):
        iccid = normalise_iccid(raw_iccid, f"{prefix}iccid")
        targets.append(Target(iccid, settings if allowed_keys is not None else {}))
    return targets
