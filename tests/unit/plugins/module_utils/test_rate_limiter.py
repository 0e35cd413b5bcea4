# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""StartPacer: no initial burst, at most `rate` starts in any one-second window."""

from __future__ import annotations

import threading

import pytest

from ansible_collections.monoz.link.plugins.module_utils._rate_limiter import StartPacer

EPSILON = 1e-9


class FakeClock:
    """Time that only moves when someone sleeps (or the test says so)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


def start_times(pacer: StartPacer, clock: FakeClock, count: int) -> list[float]:
    starts = []
    for call in range(count):
        pacer.wait()
        starts.append(clock.now)
    return starts


def max_starts_in_any_window(starts: list[float], window: float = 1.0) -> int:
    """Most starts inside any half-open window [t, t + window)."""
    ordered = sorted(starts)
    best = 0
    for i, first in enumerate(ordered):
        inside = [s for s in ordered[i:] if s < first + window - EPSILON]
        best = max(best, len(inside))
    return best


def test_first_start_is_immediate():
    clock = FakeClock()
    pacer = StartPacer(5, clock=clock, sleep=clock.sleep)
    pacer.wait()
    assert clock.sleeps == []


def test_no_initial_burst_second_start_waits_one_interval():
    clock = FakeClock()
    pacer = StartPacer(5, clock=clock, sleep=clock.sleep)
    assert start_times(pacer, clock, 3) == pytest.approx([1000.0, 1000.2, 1000.4])


@pytest.mark.parametrize("rate", [0.5, 1, 3, 7, 10, 200])
def test_starts_are_spaced_one_over_rate(rate):
    clock = FakeClock()
    pacer = StartPacer(rate, clock=clock, sleep=clock.sleep)
    starts = start_times(pacer, clock, 50)
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert gaps == pytest.approx([1.0 / rate] * 49)


@pytest.mark.parametrize("rate", [1, 3, 10, 200])
def test_any_one_second_window_holds_at_most_rate_starts(rate):
    clock = FakeClock()
    pacer = StartPacer(rate, clock=clock, sleep=clock.sleep)
    starts = start_times(pacer, clock, 3 * int(rate) + 5)
    assert max_starts_in_any_window(starts) <= rate


def test_idle_time_does_not_bank_a_burst():
    clock = FakeClock()
    pacer = StartPacer(2, clock=clock, sleep=clock.sleep)
    pacer.wait()
    clock.now += 60.0  # a long pause, e.g. the batch waited on slow responses
    starts = start_times(pacer, clock, 3)
    assert starts == pytest.approx([1060.0, 1060.5, 1061.0])


def test_slow_callers_are_not_delayed():
    clock = FakeClock()
    pacer = StartPacer(2, clock=clock, sleep=clock.sleep)
    for request in range(5):
        pacer.wait()
        clock.now += 1.0  # each request takes longer than the interval
    assert clock.sleeps == []


@pytest.mark.parametrize("rate", [0, -1])
def test_non_positive_rate_is_refused(rate):
    with pytest.raises(ValueError):
        StartPacer(rate)


def test_many_threads_share_the_pace():
    # Real threads, fake time: the clock stands still while they race, so
    # each thread's start is "now + what it was told to sleep".
    rate = 10
    clock = FakeClock(now=0.0)
    local = threading.local()
    starts: list[float] = []
    lock = threading.Lock()

    def fake_sleep(seconds: float) -> None:
        local.slept = seconds

    pacer = StartPacer(rate, clock=clock, sleep=fake_sleep)
    barrier = threading.Barrier(40)

    def worker() -> None:
        barrier.wait(timeout=10)
        for request in range(10):
            local.slept = 0.0
            pacer.wait()
            with lock:
                starts.append(clock.now + local.slept)

    threads = [threading.Thread(target=worker) for worker_number in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not any(thread.is_alive() for thread in threads)
    assert len(starts) == 400
    # every start got its own slot, 1/rate apart, none lost or shared
    assert sorted(starts) == pytest.approx([n / rate for n in range(400)])
    assert max_starts_in_any_window(starts) <= rate
