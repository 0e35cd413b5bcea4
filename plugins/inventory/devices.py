# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: devices
short_description: Monoz Link devices from a CSV, optionally with their details from the API
version_added: 0.2.0
author:
  - monoz.link contributors (@monoz-link)
description:
  - Builds inventory hosts from a CSV of devices, such as the Monoz Link console's device export or a file of your
    own. The CSV needs a header row with an C(iccid) column; every other column is optional.
  - The Monoz Link API has no endpoint that lists devices, so the CSV is the list of devices; with O(details=true)
    each device's details (SIM status, message counters, volume, dates) are read through the API, concurrently,
    and can be kept in the inventory cache.
  - Each host gets C(monoz_iccid), every other column as C(monoz_<column>), with O(details=true) the device's
    details as C(monoz_<key>) (C(monoz_status), C(monoz_dl_message_count), ...; see RV(monoz.link.monoz_device_info#module:device)
    for the keys; a detail wins over a CSV column of the same name), and C(ansible_connection=local) with
    C(ansible_python_interpreter={{ ansible_playbook_python }}), since every task about a device runs on the
    controller, in the Python that runs Ansible.
  - Column names become variable names in lower case, words and other characters turned into C(_)
    (C(Device Name) gives C(monoz_device_name), C(IMEILock) gives C(monoz_imei_lock)).
  - Values from the CSV and the API are never templated.
  - The hosts feed O(monoz.link.fleet_push#role:main:fleet_push_inventory_group) and the C(devices) option of every
    module of this collection (see the examples).
  - The inventory file's name must end in C(monoz.yml) or C(monoz.yaml), for example C(devices.monoz.yml).
notes:
  - Without O(details), the API is never contacted and the connection options are not needed.
  - With O(details), the inventory fails when any device's details cannot be read, naming the ICCIDs and the API's
    answer; enable O(cache) so that repeated runs (each C(ansible-playbook) or C(ansible-inventory) parses the
    inventory) read the details once per O(cache_timeout). C(--flush-cache) reads them again.
  - The device details API is described on pages the vendor has written but not yet published.
extends_documentation_fragment:
  - ansible.builtin.constructed
  - ansible.builtin.inventory_cache
options:
  plugin:
    description: Marks the file as a source for this plugin.
    type: str
    required: true
    choices: [monoz.link.devices]
  path:
    description:
      - The CSV of devices. A relative path is relative to the directory of the inventory file.
      - Encoded in UTF-8 (a leading byte order mark is dropped), comma-separated, with a header row; blank lines are
        ignored.
      - An ICCID is 1 to 22 digits; a bad one, a repeated one or a row with the wrong number of fields fails the
        inventory, naming the line.
    type: str
    required: true
  hostname_column:
    description:
      - The column whose value becomes the host name; matched like the variable names, so V(Name) and V(name) are the
        same column.
      - A device whose cell is empty, or every device when the CSV has no such column, is named by its ICCID.
      - Two devices with the same host name fail the inventory, naming both lines.
    type: str
    default: name
  details:
    description:
      - Also read each device's details through the API (C(GET /{org_id}/Device/Sim/Detail/{ICCID})), with the same
        engine as M(monoz.link.monoz_device_info).
    type: bool
    default: false
  org_id:
    description:
      - The organisation's unique ID in Monoz Link. Required with O(details=true).
    type: str
    env:
      - name: MONOZ_ORG_ID
  api_key:
    description:
      - The Monoz Link API key, sent in the C(X-API-Key) header. Required with O(details=true).
      - Prefer the environment variable (an AWX/AAP credential can set it) to writing the key into the inventory
        file. The key appears in no host variable, message or cache entry.
    type: str
    env:
      - name: MONOZ_API_KEY
  api_url:
    description:
      - Base URL of the Monoz Link API.
    type: str
    default: https://link.monoz.io/api/v1
    env:
      - name: MONOZ_API_URL
  timeout:
    description: Seconds to wait for the API to connect and to answer, per HTTP request.
    type: float
    default: 30
  validate_certs:
    description:
      - Whether to verify the API's TLS certificate.
      - A custom CA bundle can be given with the E(REQUESTS_CA_BUNDLE) environment variable.
    type: bool
    default: true
  retries:
    description:
      - Extra attempts per request on transient faults (connection failures before any response, HTTP 429, 502,
        503, 504), with exponential back-off. Between 0 and 20.
    type: int
    default: 3
  concurrency:
    description: Details read in parallel, over one pooled keep-alive session. Between 1 and 256.
    type: int
    default: 8
requirements:
  - requests (Python library on the controller), with O(details=true)
seealso:
  - module: monoz.link.monoz_device_info
  - module: monoz.link.monoz_downlink
  - ref: ansible_collections.monoz.link.docsite.user_guide
    description: The collection's user guide (credentials, fleets and the journal, troubleshooting).
"""

EXAMPLES = r"""
# devices.monoz.yml: hosts named by the CSV's name column, grouped by site and APN.
# $ ansible-inventory -i devices.monoz.yml --graph
plugin: monoz.link.devices
path: devices.csv                 # columns iccid,name,site,apn
keyed_groups:
  - key: monoz_site
    prefix: site
groups:
  backup_apn: monoz_apn == 'm2m.backup.example'

---
# With the details from the API (org, key and URL from MONOZ_ORG_ID, MONOZ_API_KEY, MONOZ_API_URL),
# kept for an hour in a JSON file cache, and a group of the disabled SIMs.
plugin: monoz.link.devices
path: /srv/monoz/console-export.csv
details: true
concurrency: 16
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: ~/.cache/monoz-inventory
cache_timeout: 3600
groups:
  sim_disabled: monoz_status == 0
compose:
  low_volume: monoz_volume < 1024

---
# A playbook using the hosts: one module call for the whole group, run once on the controller.
# - hosts: localhost
#   gather_facts: false
#   tasks:
#     - name: Read the details of every device of site 1
#       monoz.link.monoz_device_info:
#         devices: "{{ groups['site_site_01'] | map('extract', hostvars, 'monoz_iccid') | list }}"
#     - name: Push the site's configuration
#       ansible.builtin.include_role:
#         name: monoz.link.fleet_push
#       vars:
#         fleet_push_inventory_group: site_site_01
#         fleet_push_template: apn_config.json.j2
"""

import os

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.plugins.inventory import BaseInventoryPlugin, Cacheable, Constructable
from ansible.utils.unsafe_proxy import wrap_var

from ansible_collections.monoz.link.plugins.module_utils._device_info import (
    STATUS_OK,
    device_info_module_kwargs,
    run_device_info,
)
from ansible_collections.monoz.link.plugins.plugin_utils._device_csv import (
    DeviceCSVError,
    read_device_csv,
    variable_suffix,
)
from ansible_collections.monoz.link.plugins.plugin_utils._compat import trust_as_template

PREFIX = "monoz_"
# The options passed to the device-info engine; unset ones take the module's
# defaults and environment fallbacks from its argument spec.
ENGINE_OPTIONS = ("org_id", "api_key", "api_url", "timeout", "validate_certs", "retries", "concurrency")
REQUIRED_WITH_DETAILS = {"org_id": "MONOZ_ORG_ID", "api_key": "MONOZ_API_KEY"}
# Failed devices named in an error, at most.
MAX_NAMED_FAILURES = 10
# Bumped when the cached entry's shape changes, so an older entry counts as a miss.
CACHE_FORMAT = 1


class InventoryModule(BaseInventoryPlugin, Constructable, Cacheable):
    NAME = "monoz.link.devices"

    def verify_file(self, path):
        return super().verify_file(path) and path.endswith(("monoz.yml", "monoz.yaml"))

    def parse(self, inventory, loader, path, cache=True):
        super().parse(inventory, loader, path, cache)
        self._read_config_data(path)
        csv_path = self._csv_path(path)
        try:
            rows = read_device_csv(csv_path)
        except DeviceCSVError as exc:
            raise AnsibleParserError(f"{self.NAME}: {exc}") from None
        names = self._host_names(rows, csv_path)
        details = self._details(path, rows, cache) if self.get_option("details") else {}
        for name, row in zip(names, rows):
            self._add_device(name, row, details.get(row.iccid))

    # -- hosts -------------------------------------------------------------------
    def _csv_path(self, source: str) -> str:
        path = os.path.expanduser(str(self.get_option("path")))
        return os.path.join(os.path.dirname(os.path.abspath(source)), path)

    def _host_names(self, rows: list, csv_path: str) -> list:
        column = variable_suffix(str(self.get_option("hostname_column") or ""))
        names = []
        lines_by_name: dict = {}
        for row in rows:
            name = (row.values.get(column) if column != "iccid" else None) or row.iccid
            if name in lines_by_name:
                raise AnsibleParserError(
                    f"{self.NAME}: {csv_path} line {row.line}: host name {name!r} is already used on line"
                    f" {lines_by_name[name]}; make the {column} column unique or set hostname_column"
                )
            lines_by_name[name] = row.line
            names.append(name)
        return names

    def _add_device(self, name: str, row, details) -> None:
        self.inventory.add_host(name)
        variables = {f"{PREFIX}{key}": value for key, value in row.values.items()}
        for key, value in (details or {}).items():
            if key != "iccid":
                variables[f"{PREFIX}{key}"] = value
        variables[f"{PREFIX}iccid"] = row.iccid
        # Data from a CSV or the API is never a template: wrap_var marks it
        # unsafe before 2.19 and drops any trust tag since, on every core.
        for key, value in variables.items():
            self.inventory.set_variable(name, key, wrap_var(value))
        self.inventory.set_variable(name, "ansible_connection", "local")
        # Module tasks about a device run on the controller, in this Python
        # (which has requests), not in one discovered for a remote host.
        self.inventory.set_variable(name, "ansible_python_interpreter", trust_as_template("{{ ansible_playbook_python }}"))

        strict = self.get_option("strict")
        self._set_composite_vars(self.get_option("compose"), self.inventory.get_host(name).get_vars(), name, strict=strict)
        host_vars = self.inventory.get_host(name).get_vars()
        self._add_host_to_composed_groups(self.get_option("groups"), host_vars, name, strict=strict)
        self._add_host_to_keyed_groups(self.get_option("keyed_groups"), host_vars, name, strict=strict)

    # -- details ---------------------------------------------------------------
    def _engine_params(self, source: str, iccids: list) -> dict:
        """The device-info engine's options, validated by the module's own argument spec."""
        args = {name: self.get_option(name) for name in ENGINE_OPTIONS if self.get_option(name) is not None}
        for name, env in REQUIRED_WITH_DETAILS.items():
            if not str(args.get(name) or "").strip():
                raise AnsibleParserError(
                    f"{self.NAME}: {source}: {name} is required with details: true;"
                    f" set it in the inventory file or the {env} environment variable"
                )
        args["devices"] = iccids
        kwargs = device_info_module_kwargs()
        kwargs.pop("supports_check_mode", None)
        validation = ArgumentSpecValidator(**kwargs).validate(args)
        if validation.error_messages:
            raise AnsibleParserError(f"{self.NAME}: {source}: {self._redact(validation.errors.msg, args)}")
        return validation.validated_parameters

    def _details(self, source: str, rows: list, cache: bool) -> dict:
        """{ICCID: details} of every row: from the cache where it has them, else through the API."""
        iccids = [row.iccid for row in rows]
        params = self._engine_params(source, iccids)
        use_cache = bool(self.get_option("cache"))
        cache_key = self.get_cache_key(source)
        known: dict = {}
        if use_cache and cache:
            known = self._cached_details(cache_key, params)
        missing = [iccid for iccid in iccids if iccid not in known]
        fetched = self._read_details(source, params, missing) if missing else {}
        details = {iccid: known[iccid] if iccid in known else fetched[iccid] for iccid in iccids}
        if use_cache and (missing or not cache):
            self._cache[cache_key] = {
                "format": CACHE_FORMAT,
                "org_id": params["org_id"],
                "api_url": params["api_url"],
                "devices": details,
            }
        return details

    def _cached_details(self, cache_key: str, params: dict) -> dict:
        """What the cache holds for this source and this org and API, else {}."""
        try:
            entry = self._cache[cache_key]
        except KeyError:
            return {}
        if (
            not isinstance(entry, dict)
            or entry.get("format") != CACHE_FORMAT
            or entry.get("org_id") != params["org_id"]
            or entry.get("api_url") != params["api_url"]
            or not isinstance(entry.get("devices"), dict)
        ):
            return {}
        return {iccid: device for iccid, device in entry["devices"].items() if isinstance(device, dict)}

    def _read_details(self, source: str, params: dict, iccids: list) -> dict:
        run = run_device_info(dict(params, devices=iccids), check_mode=False)
        for warning in run.warnings:
            self.display.warning(f"{self.NAME}: {self._redact(warning, params)}")
        results = run.result.get("results")
        if not isinstance(results, list):  # the task failed as a whole, before any device
            raise AnsibleParserError(
                f"{self.NAME}: {source}: {self._redact(str(run.result.get('msg')), params)}"
            )
        failed = [str(result.get("iccid")) for result in results if result.get("status") != STATUS_OK]
        if failed:
            # The engine's message has the first failure's HTTP status and API message
            # (or the 401 that stopped the fleet); the ICCIDs say which devices to look at.
            named = ", ".join(failed[:MAX_NAMED_FAILURES])
            more = f" and {len(failed) - MAX_NAMED_FAILURES} more" if len(failed) > MAX_NAMED_FAILURES else ""
            raise AnsibleParserError(self._redact(
                f"{self.NAME}: {source}: could not read the details of {len(failed)} of {len(results)}"
                f" devices (ICCID {named}{more}): {run.result.get('msg')}",
                params,
            ))
        return {result["iccid"]: result["device"] for result in results}

    @staticmethod
    def _redact(text: str, params: dict) -> str:
        """Belt and braces: the engine already keeps the key out of its messages."""
        key = str(params.get("api_key") or "").strip()
        return text.replace(key, "********") if key else text
