# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Start-time pacing shared by all workers of a batch.

Private to the monoz.link collection: not a public API, it may change without notice.

A classic token bucket starts full and lets a burst of ``rate`` requests out
at once.  The design asks for no initial burst: in any one-second window at
most ``rate`` requests start.  Spacing every start at least ``1 / rate``
seconds after the previous one gives exactly that, with one lock and no
background thread.
"""

from __future__ import annotations

import threading
import time


class StartPacer:
    """Blocks each caller until its reserved start slot; thread-safe."""

    def __init__(self, rate_per_second: float, clock=time.monotonic, sleep=time.sleep) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.interval = 1.0 / rate_per_second
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._next_start: float | None = None

    def wait(self) -> None:
        # Reserve the slot under the lock, sleep outside it, so waiting
        # workers queue in arrival order without holding each other up.
        with self._lock:
            now = self._clock()
            start = now if self._next_start is None else max(now, self._next_start)
            self._next_start = start + self.interval
        delay = start - now
        if delay > 0:
            self._sleep(delay)
