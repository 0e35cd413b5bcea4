#!/usr/bin/env python3
"""Execution-environment checks of make lint, with ansible-builder (no container engine needed).

  check-ee.py introspect COLLECTIONS_DIR PACKAGE [PACKAGE ...]
      ansible-builder introspect on COLLECTIONS_DIR (holding ansible_collections/,
      e.g. the built tarball installed there); fails unless every PACKAGE is
      among the Python requirements it finds, and on any pin (==) or
      ansible-core requirement: the collection declares lower bounds only.

  check-ee.py create EE_FILE CONTEXT_DIR
      ansible-builder create on the EE definition EE_FILE into CONTEXT_DIR;
      fails unless it writes a Containerfile that installs the definition's
      Galaxy requirements.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from pathlib import Path

BUILDER = [sys.executable, "-m", "ansible_builder"]
NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def run(command: list[str]) -> subprocess.CompletedProcess:
    print("+", " ".join(command), flush=True)
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    return proc


def introspect(collections: str, packages: list[str]) -> int:
    with tempfile.TemporaryDirectory(prefix="ee-introspect-") as tmp:
        pip_file = Path(tmp, "requirements.txt")
        proc = run(BUILDER + ["introspect", "--sanitize", "--write-pip", str(pip_file), collections])
        if proc.returncode:
            print(f"FAIL: ansible-builder introspect exited {proc.returncode}", file=sys.stderr)
            return 1
        lines = pip_file.read_text(encoding="utf-8").splitlines() if pip_file.exists() else []
    requirements = [line.split("#", 1)[0].strip() for line in lines]
    requirements = [line for line in requirements if line]
    found = {NAME.match(line).group(1).lower().replace("_", "-") for line in requirements if NAME.match(line)}
    problems = [f"{package} is not among the collection's Python requirements"
                for package in packages if package.lower() not in found]
    problems += [f"pinned requirement {line!r}: declare lower bounds only" for line in requirements if "==" in line]
    problems += ["ansible-core must not be a requirement (the base image brings it)"
                 for name in found if name in ("ansible-core", "ansible")]
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: introspect lists {', '.join(sorted(found))}")
    return 1 if problems else 0


def create(ee_file: str, context: str) -> int:
    proc = run(BUILDER + ["create", "-f", ee_file, "-c", context, "--output-filename", "Containerfile"])
    containerfile = Path(context, "Containerfile")
    problems = []
    if proc.returncode:
        problems.append(f"ansible-builder create exited {proc.returncode}")
    elif not containerfile.is_file():
        problems.append(f"no {containerfile} written")
    elif "ansible-galaxy collection install" not in containerfile.read_text(encoding="utf-8"):
        problems.append(f"{containerfile} installs no collection")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: build context in {context}")
    return 1 if problems else 0


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "introspect":
        return introspect(sys.argv[2], sys.argv[3:])
    if len(sys.argv) == 4 and sys.argv[1] == "create":
        return create(sys.argv[2], sys.argv[3])
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main())
