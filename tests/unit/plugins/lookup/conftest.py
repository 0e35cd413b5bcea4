# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Lookups are loaded the way a play loads them: through ansible-core's plugin loader, by FQCN."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, lookup_loader
from ansible.template import Templar
from ansible.utils.collection_loader import AnsibleCollectionConfig

if AnsibleCollectionConfig.collection_finder is None:
    # Plain pytest with the collections directory on PYTHONPATH (ansible-test
    # installs its own finder): the plugin loader needs the collection finder,
    # installed before the test modules import the collection.
    import ansible_collections

    init_plugin_loader([str(Path(path).parent) for path in ansible_collections.__path__])


@pytest.fixture
def load_lookup():
    """``load_lookup(name, basedir, variables)``: the collection's lookup ``name``, ready to run."""

    def load(name: str, basedir, variables: dict | None = None):
        loader = DataLoader()
        loader.set_basedir(str(basedir))
        plugin = lookup_loader.get(f"monoz.link.{name}", loader=loader,
                                   templar=Templar(loader=loader, variables=variables or {}))
        assert plugin is not None, f"lookup monoz.link.{name} not found"
        return plugin

    return load
