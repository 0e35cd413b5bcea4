#!/usr/bin/env python3
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Alias of bench/run_bench.py (the Makefile's default BENCH_SCRIPT is bench/bench.py)."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    sys.argv[0] = str(Path(__file__).with_name("run_bench.py"))
    runpy.run_path(sys.argv[0], run_name="__main__")
