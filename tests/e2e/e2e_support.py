"""Constants and helpers the end-to-end test modules share with their conftest.

The reliability suite (tests/reliability/rel_support.py) runs ansible-playbook
the same way and takes its environment from here too.

Test modules import these from here, not from ``conftest``: pytest imports each
directory's conftest.py under the one module name ``conftest``, so when
tests/reliability is collected in the same run (``make integration``),
``from conftest import ...`` would find the other directory's conftest.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

EMULATOR_DIR = Path(__file__).resolve().parent.parent.parent / "emulator"
if str(EMULATOR_DIR) not in sys.path:
    sys.path.insert(0, str(EMULATOR_DIR))

from ansible.release import __version__ as _ANSIBLE_CORE_VERSION  # noqa: E402
from monoz_emulator.testing import generated_iccid  # noqa: E402

# The ansible-core that runs the playbooks: the one installed beside pytest.
ANSIBLE_CORE = tuple(int(part) for part in _ANSIBLE_CORE_VERSION.split(".")[:2])

ORG = "DEMO"
# Distinctive, so a search of every output for it cannot hit anything else.
API_KEY = "e2e-K3y-5ecret-9f1c7d2a"
WRONG_KEY = "e2e-Wr0ng-K3y-77aa31be"


def unwrapped(text: str) -> str:
    """Output with each warning on one line: before ansible-core 2.19 they are
    wrapped at 79 columns when there is no terminal, after hyphens too."""
    return text.replace("-\n", "-").replace("\n", " ")


def shows(secret: str, text: str) -> bool:
    """Whether ``text`` holds ``secret``, also split across lines: before 2.19
    ansible-core wraps warnings at 79 columns, inside long words and after hyphens."""
    return secret in text or secret in text.replace("\n", "")


def iccid(index: int) -> str:
    """ICCID of the index-th device registered in the session emulator."""
    return generated_iccid(index)


def local_controller_files(workdir: Path) -> tuple[Path, Path]:
    """An inventory of localhost on this interpreter and an explicit, empty ansible.cfg, in workdir.

    The empty config keeps any ansible.cfg of the developer's out of the run.
    """
    inventory = workdir / "inventory.ini"
    inventory.write_text(f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    config = workdir / "ansible.cfg"
    config.write_text("[defaults]\n")
    return inventory, config


def isolated_ansible_env(collections: Path, workdir: Path, config: Path, execution: str | None,
                         drop: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment for ansible-playbook, with nothing of the developer's Ansible in it.

    No ANSIBLE_* or MONOZ_* variable (nor any name in ``drop``) passes through;
    the collection comes from ``collections`` only, and every directory
    Ansible writes is under ``workdir``. ``execution`` sets
    MONOZ_DOWNLINK_EXECUTION (None: the default path).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONOZ_", "ANSIBLE_")) and k not in drop}
    env.update(
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_HOME=str(workdir / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(workdir / "ansible-tmp"),
        ANSIBLE_REMOTE_TEMP=str(workdir / "ansible-remote-tmp"),
        ANSIBLE_RETRY_FILES_ENABLED="false",
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_STDOUT_CALLBACK="default",
        ANSIBLE_CONFIG=str(config),
    )
    if execution is not None:
        env["MONOZ_DOWNLINK_EXECUTION"] = execution
    return env
