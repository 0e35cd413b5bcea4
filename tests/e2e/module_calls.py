"""Helpers of the e2e tests of monoz_device_info, monoz_sim, monoz_sim_reset and monoz_data_info.

Downlinks and uplinks that set the scene go straight to the emulator (its API
and control endpoints), so each test's playbook runs only the module under
test; what the devices received is read back over the emulator's MQTT
subscriber, never from the module's own answer.
"""

from __future__ import annotations

from typing import Any

import requests

from e2e_support import API_KEY, ORG

UNKNOWN_ICCID = "8988280666999999999"


def publish(emu, device: str, payload: str, retain: bool = False, qos: int = 1) -> None:
    """One downlink through the emulator's API, as any client would send it."""
    response = requests.post(
        emu.process.publish_url,
        headers={"X-API-Key": API_KEY},
        json={"ICCID": device, "Topic": "", "Message": payload, "QoS": qos, "Format": 1, "RetainLastMessage": retain},
        timeout=30,
    )
    assert response.status_code == 200, response.text


def device_topic(device: str) -> str:
    return f"/{ORG}/{device}/sub"


def endpoint_count(emu, endpoint: str) -> int:
    """How many requests the emulator answered on ``endpoint`` (e.g. ``"PUT Sim/Enable"``), any status."""
    return sum(emu.stats().get("by_endpoint", {}).get(endpoint, {}).values())


def calls(ansible, playbook: str, calls_: list[dict[str, Any]], emu, **kwargs):
    """Run a driver playbook (one module call per element of ``calls_``) with the emulator's credentials."""
    profiles = kwargs.pop("profiles", None) or {"default": emu.profile()}
    return ansible.run(playbook, {"e2e_calls": calls_, "e2e_profiles": profiles}, **kwargs)
