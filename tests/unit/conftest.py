# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import importlib.util
import os
import socket
import sys
import tempfile

import pytest
from ansible.utils.collection_loader._collection_finder import _AnsibleCollectionFinder
from hypothesis import settings
from hypothesis.configuration import set_hypothesis_home_dir


def _install_collection_finder() -> None:
    """What ``ansible-test units`` does first, for a plain pytest run (PYTHONPATH above ``ansible_collections``).

    Ansible's plugin loader (the inventory tests load plugins through it) only
    finds a collection imported through its finder, so the finder must be in
    place before any test imports the collection.
    """
    if any(isinstance(finder, _AnsibleCollectionFinder) for finder in sys.meta_path):
        return
    spec = importlib.util.find_spec("ansible_collections")
    if spec is not None and spec.submodule_search_locations:
        roots = [os.path.dirname(location) for location in spec.submodule_search_locations]
        _AnsibleCollectionFinder(paths=roots, scan_sys_paths=False)._install()  # pylint: disable=protected-access


_install_collection_finder()


@pytest.fixture(autouse=True)
def no_sockets(monkeypatch):
    """Unit tests never touch the network: any connect attempt fails the test."""
    attempts = []

    def refuse(self, address, *args, **kwargs):
        attempts.append(address)
        raise OSError(f"unit tests must not open sockets (tried {address!r})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield
    assert not attempts, f"a test tried to open a socket: {attempts}"


@pytest.fixture(autouse=True)
def no_monoz_environment(monkeypatch):
    """Neither the module's env fallbacks nor requests' CA/proxy settings may come from the machine."""
    for name in ("MONOZ_ORG_ID", "MONOZ_API_KEY", "MONOZ_API_URL", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
                 "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


# No example database, and Hypothesis' caches outside the collection tree:
# a .hypothesis/ directory at the collection root would end up in the build.
set_hypothesis_home_dir(os.path.join(tempfile.gettempdir(), "monoz-link-unit-hypothesis"))
settings.register_profile("monoz_unit", database=None, deadline=None)
settings.load_profile("monoz_unit")
