# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Argument spec of monoz_downlink, shared by the module and its action plugin.

Private to the monoz.link collection: not a public API, it may change without notice.
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


def downlink_module_kwargs() -> dict:
    """Keyword arguments for AnsibleModule (or ArgumentSpecValidator) of monoz_downlink."""
    argument_spec = connection_argument_spec()
    argument_spec.update({
        "iccid": {"type": "str"},
        "devices": {"type": "list", "elements": "raw"},
        "payload": {"type": "raw"},
        "format": {"type": "str", "choices": ["json", "text"]},
        "topic": {"type": "str", "default": ""},
        "qos": {"type": "int", "default": 0, "choices": [0, 1]},
        "retain": {"type": "bool"},
        "concurrency": {"type": "int", "default": 8},
        "rate_limit": {"type": "float", "default": 0.0},
        "journal": {"type": "path"},
    })
    return {
        "argument_spec": argument_spec,
        "mutually_exclusive": [("iccid", "devices")],
        "required_one_of": [("iccid", "devices")],
        "supports_check_mode": True,
    }
