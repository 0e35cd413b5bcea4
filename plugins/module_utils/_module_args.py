# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Argument specs every Monoz Link module shares, for its module and its action plugin.

Private to the monoz.link collection: not a public API, it may change without notice.

The connection options are documented once in the monoz.link.connection doc
fragment; the targets (``iccid`` / ``devices``) and fleet options
(``concurrency`` / ``rate_limit``) in each module, since what a device dict
may carry differs.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ._api_client import DEFAULT_API_URL


def connection_argument_spec() -> dict:
    """Options every Monoz Link module takes; documented in the monoz.link.connection fragment."""
    return {
        "org_id": {"type": "str", "required": True, "fallback": (env_fallback, ["MONOZ_ORG_ID"])},
        "api_key": {"type": "str", "required": True, "no_log": True, "fallback": (env_fallback, ["MONOZ_API_KEY"])},
        "api_url": {"type": "str", "default": DEFAULT_API_URL, "fallback": (env_fallback, ["MONOZ_API_URL"])},
        "timeout": {"type": "float", "default": 30.0},
        "validate_certs": {"type": "bool", "default": True},
        "retries": {"type": "int", "default": 3},
    }


def target_argument_spec() -> dict:
    """``iccid`` (one device) or ``devices`` (a fleet)."""
    return {
        "iccid": {"type": "str"},
        "devices": {"type": "list", "elements": "raw"},
    }


def fleet_argument_spec() -> dict:
    """How a fleet is worked through: parallel requests and a rate across the fleet."""
    return {
        "concurrency": {"type": "int", "default": 8},
        "rate_limit": {"type": "float", "default": 0.0},
    }


def module_kwargs(options: dict, fleet: bool = True, targets_required: bool = True) -> dict:
    """AnsibleModule (or ArgumentSpecValidator) keyword arguments: shared options plus the module's own."""
    argument_spec = connection_argument_spec()
    argument_spec.update(target_argument_spec())
    if fleet:
        argument_spec.update(fleet_argument_spec())
    argument_spec.update(options)
    kwargs = {
        "argument_spec": argument_spec,
        "mutually_exclusive": [("iccid", "devices")],
        "supports_check_mode": True,
    }
    if targets_required:
        kwargs["required_one_of"] = [("iccid", "devices")]
    return kwargs
