# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Benchmark-only callback: timestamps of task starts, loop items and task ends.

Enabled by bench/run_bench.py (ANSIBLE_CALLBACK_PLUGINS + ANSIBLE_CALLBACKS_ENABLED);
it writes one JSON document to the file named by BENCH_TIMINGS_FILE when the
playbook ends. Times are time.time() of the controller's main process (wall
clock, comparable with the emulator's message timestamps on the same host);
``playbook_start`` is taken when the plugin loads (after interpreter start and
imports, so the benchmark also measures the whole process wall itself).
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: bench_timer
type: aggregate
short_description: record task and loop-item timestamps for bench/run_bench.py
description:
  - Benchmark helper of the monoz.link repository; not part of the collection.
requirements:
  - enabled through ANSIBLE_CALLBACKS_ENABLED
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_timer"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._loaded = time.time()
        self._tasks = []
        self._current = None

    def _now(self):
        return time.time()

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._current = {"name": task.get_name(), "start": self._now(), "items": [], "end": None, "status": None}
        self._tasks.append(self._current)

    def _item(self, result, status):
        if self._current is not None:
            self._current["items"].append((self._now(), status))

    def v2_runner_item_on_ok(self, result):
        self._item(result, "ok")

    def v2_runner_item_on_failed(self, result):
        self._item(result, "failed")

    def v2_runner_item_on_skipped(self, result):
        self._item(result, "skipped")

    def _end(self, result, status):
        if self._current is not None:
            self._current["end"] = self._now()
            self._current["status"] = status

    def v2_runner_on_ok(self, result):
        self._end(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._end(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._end(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._end(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("BENCH_TIMINGS_FILE")
        if not path:
            return
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"loaded": self._loaded, "stats_at": self._now(), "tasks": self._tasks}, handle)
