#!/usr/bin/env python3
"""Install offline stand-ins for ansible-test's get-pip bootstrap script.

ansible-test --venv bootstraps pip in every venv it creates by downloading
get-pip-<version>.py from ci-files.testing.ansible.com, which this project's
machines cannot reach. It first looks in ~/.ansible/test/cache/get_pip_<ver>.py
(always $HOME, not ANSIBLE_HOME), so we put a stand-in there that bootstraps
pip with the interpreter's own ensurepip, then pip-installs the arguments
ansible-test passes (e.g. ``pip==25.2``) from PyPI.

Usage: ansible-test-get-pip.py PYTHON [PYTHON ...]
Each PYTHON is an interpreter with ansible-core installed; the pip version is
read from its ansible_test/_internal/python_requirements.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

STAND_IN = '''\
"""Offline stand-in for get-pip.py, written by monoz.link scripts/ansible-test-get-pip.py."""
import subprocess
import sys

# get-pip.py options that are not pip-install options.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}

# ensurepip runs in a subprocess: in-process it sets PIP_CONFIG_FILE=/dev/null,
# and the pip calls that follow would lose the machine's pip.conf (CA bundle).
rc = subprocess.call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
if rc:
    sys.exit(rc)
args = [a for a in sys.argv[1:] if a not in GET_PIP_ONLY]
if args:
    sys.exit(subprocess.call([sys.executable, "-m", "pip", "install"] + args))
'''

FIND_PIP = (
    "import ansible_test, os; "
    "print(os.path.join(os.path.dirname(ansible_test.__file__), '_internal', 'python_requirements.py'))"
)


def pip_versions(python: str) -> set[str]:
    source_path = subprocess.check_output([python, "-c", FIND_PIP], text=True).strip()
    source = Path(source_path).read_text(encoding="utf-8")
    found = set(re.findall(r"""\bpip=['"]([0-9][0-9.]*)['"]""", source))
    if not found:
        sys.exit(f"no pip= version found in {source_path}; ansible-test changed its bootstrap")
    return found


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    cache = Path(os.path.expanduser("~/.ansible/test/cache"))
    cache.mkdir(parents=True, exist_ok=True)
    for python in sys.argv[1:]:
        for version in sorted(pip_versions(python)):
            target = cache / f"get_pip_{version.replace('.', '_')}.py"
            if not target.exists() or target.read_text(encoding="utf-8") != STAND_IN:
                target.write_text(STAND_IN, encoding="utf-8")
                print(f"wrote {target} (pip {version}, for {python})")


if __name__ == "__main__":
    main()
