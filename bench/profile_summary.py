#!/usr/bin/env python3
# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Summarise a py-spy raw (collapsed stacks) profile written by run_bench.py --profile.

    python bench/profile_summary.py PROFILE.txt [--top 25] [--match monoz]

Prints, per process and thread group, the share of samples whose stack contains a
function (inclusive) and the share where it is the leaf (self), idle samples
(threads waiting on a socket or lock) shown separately.
"""

from __future__ import annotations

import argparse
import collections
import re


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("profile")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--match", default="", help="only functions whose frame text contains this")
    args = parser.parse_args()
    inclusive: collections.Counter = collections.Counter()
    leaf: collections.Counter = collections.Counter()
    per_proc: collections.Counter = collections.Counter()
    total = 0
    with open(args.profile, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack:
                continue
            count = int(count)
            frames = stack.split(";")
            # py-spy --subprocesses --threads: first frames name the process and the thread
            procs = [f for f in frames if f.startswith("process ")]
            threads = [f for f in frames if f.startswith("thread ")]
            # the innermost process frame is the sampled process; worker threads grouped by name prefix
            proc = (f"{'forked worker' if len(procs) > 1 else 'ansible-playbook main'} / "
                    f"{re.sub(r'-[0-9]+$', '-N', threads[-1].split(': ', 1)[-1]) if threads else '?'}")
            per_proc[proc] += count
            total += count
            seen = set()
            for frame in frames:
                # "func (file.py:123)" -> "func (file.py)": one entry per function
                key = re.sub(r":\d+\)$", ")", frame)
                if key not in seen:
                    seen.add(key)
                    inclusive[key] += count
            leaf[frames[-1]] += count
    print(f"{total} samples")
    for proc, count in per_proc.most_common():
        print(f"  {100 * count / total:5.1f}%  {proc}")
    print("\ninclusive (stack contains the frame):")
    shown = 0
    for frame, count in inclusive.most_common():
        if args.match and args.match not in frame:
            continue
        if frame.startswith(("process ", "thread ")):
            continue
        print(f"  {100 * count / total:5.1f}%  {frame}")
        shown += 1
        if shown >= args.top:
            break
    print("\nself (leaf frame):")
    for frame, count in leaf.most_common(args.top):
        print(f"  {100 * count / total:5.1f}%  {frame}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
