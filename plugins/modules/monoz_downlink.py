#!/usr/bin/python
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: monoz_downlink
short_description: Send downlink messages to SIM-connected IoT devices through Monoz Link
version_added: 0.1.0
description:
  - Publishes downlink messages (configuration, commands) to devices through the Monoz Link
    C(Publish/Message) API, which delivers them over MQTT on topic C(/<org_id>/<iccid>/sub) plus O(topic).
  - Sends to one device (O(iccid)) or to many in one task (O(devices)), in parallel over one pooled
    keep-alive connection set, with an optional rate limit.
  - Every option and every device is validated before the first request, so bad input sends nothing.
  - A downlink cannot be read back from the API, so the module cannot prove a message is already on a device;
    it reports RV(ignore:changed=true) whenever it publishes. Use O(journal) to make re-runs idempotent.
author:
  - monoz.link contributors (@monoz-link)
extends_documentation_fragment:
  - monoz.link.connection
  - monoz.link.attributes
attributes:
  check_mode:
    support: full
    details: Nothing is sent; RV(request) and RV(results) show what would be sent, and RV(ignore:changed) what a real run would report.
  diff_mode:
    support: none
  idempotent:
    support: partial
    details:
      - A downlink cannot be read back, so a second run sends again and reports RV(ignore:changed=true).
      - With O(journal), a message already delivered is skipped, so a re-run is idempotent.
options:
  iccid:
    description:
      - ICCID of the one device to send to, digits only, 1 to 22 of them.
      - Exactly one of O(iccid) and O(devices) is required.
    type: str
  devices:
    description:
      - Many devices to send to in one task (batch mode).
      - Each element is an ICCID string, or a dict with key C(iccid) and optionally C(payload), C(topic), C(qos),
        C(format) and C(retain), which override the task-level options for that device.
      - Several messages for one ICCID go out one after another in list order; if one fails, the later
        ones for that ICCID are not attempted. Different devices are sent to in parallel.
      - Results come back in input order in RV(results). An empty list sends nothing and reports RV(ignore:changed=false).
    type: list
    elements: raw
  payload:
    version_added: 0.2.0
    description:
      - The downlink message, sent as the API's C(Message) field (Ansible reserves the option name C(message)).
      - A string is sent exactly as given, byte for byte (a rendered template included); with O(format=json) it must
        parse as JSON, which is checked before anything is sent, but it is never re-serialised.
      - A dict or list is sent as compact JSON text (separators C(,) and C(:), non-ASCII kept as UTF-8)
        with O(format=json).
      - 1 to 4096 bytes of UTF-8 after serialisation (monoZ:Jet modules take at most 1024).
      - Required unless every element of O(devices) carries its own C(payload).
    type: raw
  format:
    description:
      - C(json) (API C(Format) 0) or C(text) (API C(Format) 1).
      - Defaults to C(json) when O(payload) is a dict or list, and to C(text) otherwise.
      - With C(json), a string payload must be valid JSON; this is checked before anything is sent.
        The service strips CR and LF from JSON messages before pushing them to the device.
    type: str
    choices: [json, text]
  topic:
    description:
      - Extra topic levels after C(/<org_id>/<iccid>/sub), for example C(/config/apn).
      - Empty, or starting with C(/). MQTT wildcards C(+) and C(#) are refused, since MQTT cannot publish to them.
      - The whole topic is at most 512 bytes.
    type: str
    default: ""
  qos:
    description:
      - MQTT quality of service of the downlink.
    type: int
    choices: [0, 1]
    default: 0
  retain:
    description:
      - If V(true), the broker keeps the message and delivers it when the device next subscribes.
      - Sent as C(RetainLastMessage) only when set, so API versions that do not know it never see it.
    type: bool
  concurrency:
    description:
      - Parallel requests in batch mode, over one pooled keep-alive session that holds this many connections.
      - Between 1 and 256.
    type: int
    default: 8
  rate_limit:
    description:
      - Most messages per second to start across the whole batch, retries included, with no initial burst.
      - V(0) means unlimited.
      - The vendor recommends at least one minute between two downlinks to the same device.
    type: float
    default: 0
  journal:
    description:
      - Path of a JSON-lines file, on the host that runs the module, recording every delivery the API confirmed.
      - A device whose identical message (same org, ICCID, topic, qos, format, retain and payload) is already in
        the journal is skipped, so re-running a push is idempotent and an interrupted push resumes where it stopped.
      - The file is created if missing; its directory must exist. It never holds the API key.
    type: path
notes:
  - Success is HTTP 200 with a JSON object body; the body's C(Error) key is not required (newer API versions drop it).
    A 200 whose body is not JSON did not come from the API (a captive portal, a wrong O(api_url)) and counts as a failure.
  - The task fails when any device failed, and still returns every device's result in RV(results).
  - An HTTP 401 in a batch stops the batch at once, since the key is wrong for every device;
    devices not attempted are reported C(failed) with a RV(results[].msg) saying so.
  - For fleets of tens of thousands of devices, read O(devices) from a file in the task rather than passing them
    as extra vars; the scaling guide explains why and how.
seealso:
  - name: Monoz Link API
    description: The vendor's API documentation.
    link: https://link.monoz.io/
  - module: ansible.builtin.uri
    description: The general HTTP module; one request per task.
  - ref: ansible_collections.monoz.link.docsite.user_guide
    description: The collection's user guide (credentials, fleets and the journal, troubleshooting).
  - ref: ansible_collections.monoz.link.docsite.scaling_guide
    description: Fleets at scale, execution environments, AWX and Automation Platform job templates and job slicing.
"""

EXAMPLES = r"""
- name: Send one text command to one device
  monoz.link.monoz_downlink:
    org_id: mti
    api_key: "{{ vault_monoz_api_key }}"
    iccid: "8988280666000000001"
    payload: reboot

- name: Send a JSON configuration, retained until the device next connects
  monoz.link.monoz_downlink:
    iccid: "8988280666000000001"
    topic: /config/apn
    qos: 1
    retain: true
    payload:
      apn: iot.example
      interval: 300

- name: Set credentials once for every Monoz Link task of a play
  module_defaults:
    group/monoz.link.monoz:
      org_id: mti
      api_key: "{{ vault_monoz_api_key }}"
  block:
    - name: Push a config to many devices, then reboot them, resumable through a journal
      monoz.link.monoz_downlink:
        devices:
          - "8988280666000000001"
          - iccid: "8988280666000000002"
            payload: {apn: iot.other}
          - iccid: "8988280666000000001"
            payload: reboot
            format: text
        payload: {apn: iot.example}
        concurrency: 32
        rate_limit: 200
        journal: /var/lib/monoz/push-2026-11.jsonl
      register: push

    - name: Show the tally
      ansible.builtin.debug:
        var: push.summary
"""

RETURN = r"""
status_code:
  description: HTTP status of the last attempt.
  returned: single mode, when a request was made
  type: int
  sample: 200
response:
  description: The API's JSON body; newer API versions leave out C(Error).
  returned: single mode, when a response was received
  type: dict
  sample: {"Error": false, "StatusCode": 200, "Message": "MessagePublished"}
request:
  description: The request body sent, or that would be sent in check mode. Never holds the API key.
  returned: single mode, after validation
  type: dict
  sample: {"ICCID": "8988280666000000001", "Topic": "/config", "Message": "{\"apn\":\"iot.example\"}", "QoS": 1, "Format": 0}
attempts:
  description: HTTP attempts made, retries included (3 after two 503 answers and a 200); 0 when nothing was sent.
  returned: single mode, after validation
  type: int
  sample: 1
results:
  description: One entry per element of O(devices), in input order.
  returned: batch mode, after validation
  type: list
  elements: dict
  contains:
    iccid:
      description: The device's ICCID.
      type: str
      returned: always
      sample: "8988280666000000001"
    status:
      description:
        - C(sent) when the API confirmed the message, C(failed) when it did not or the message was not attempted,
          C(skipped) when the journal already held it, C(would_send) in check mode.
      type: str
      returned: always
      sample: sent
    status_code:
      description: HTTP status of the last attempt; null when no response was received.
      type: int
      returned: always
      sample: 200
    response:
      description: The API's JSON body; null when no response was received.
      type: dict
      returned: always
      sample: {"Error": false, "StatusCode": 200, "Message": "MessagePublished"}
    attempts:
      description: HTTP attempts made for this message.
      type: int
      returned: always
      sample: 1
    msg:
      description: What went wrong.
      type: str
      returned: when status is C(failed)
      sample: "HTTP 404 Not Found for ICCID 8988280666000000009: ICCID not found"
summary:
  description:
    - Counts over RV(results). C(would_send) counts the messages check mode would send.
  returned: batch mode, after validation
  type: dict
  sample: {"total": 3, "sent": 2, "failed": 1, "skipped": 0, "would_send": 0}
msg:
  description:
    - On failure, what failed, naming the HTTP status and the API's message.
    - In single mode, also when the journal already holds the identical message and nothing was sent.
  returned: failure, or a journal skip in single mode
  type: str
  sample: "HTTP 404 Not Found for ICCID 8988280666000000009: ICCID not found"
"""

from ansible_collections.monoz.link.plugins.module_utils._downlink_args import downlink_module_kwargs
from ansible_collections.monoz.link.plugins.module_utils._downlink_runner import run_downlink
from ansible_collections.monoz.link.plugins.module_utils._module_main import run_module


def main() -> None:
    run_module(downlink_module_kwargs(), run_downlink)


if __name__ == "__main__":
    main()
