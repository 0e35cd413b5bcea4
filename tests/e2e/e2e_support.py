"""Constants and helpers the end-to-end test modules share with their conftest.

Test modules import these from here, not from ``conftest``: pytest imports each
directory's conftest.py under the one module name ``conftest``, so when
tests/reliability is collected in the same run (``make integration``),
``from conftest import ...`` would find the other directory's conftest.
"""

from __future__ import annotations

import sys
from pathlib import Path

EMULATOR_DIR = Path(__file__).resolve().parent.parent.parent / "emulator"
if str(EMULATOR_DIR) not in sys.path:
    sys.path.insert(0, str(EMULATOR_DIR))

from monoz_emulator.testing import generated_iccid  # noqa: E402

ORG = "DEMO"
# Distinctive, so a search of every output for it cannot hit anything else.
API_KEY = "e2e-K3y-5ecret-9f1c7d2a"
WRONG_KEY = "e2e-Wr0ng-K3y-77aa31be"


def iccid(index: int) -> str:
    """ICCID of the index-th device registered in the session emulator."""
    return generated_iccid(index)
