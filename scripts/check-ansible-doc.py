#!/usr/bin/env python3
"""Check that ansible-doc renders every module, plugin and role of monoz.link.

ansible-doc exits 0 even when a plugin is not found or its docs do not parse
(it only prints a warning), so this runs it once per name and fails on a
non-zero exit, any [WARNING]/[ERROR], or empty output.
Run from the collection root, with the collection on ANSIBLE_COLLECTIONS_PATH.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

COLLECTION = "monoz.link"
# ansible-core's own internal collection has no version; its warning is not ours
IGNORED_STDERR = re.compile(r"^\[WARNING\]: Collection at '[^']*/ansible_collections/ansible/_protomatter'.*$", re.M)
# filter and test plugin files hold several plugins each: ask ansible-doc for the names
LISTED_TYPES = {"filter": "filter", "test": "test"}
# plugin directories whose file names are plugin names (filter and test plugin
# files hold several plugins each; action plugins share their module's docs)
PLUGIN_DIRS = {
    "modules": "module",
    "lookup": "lookup",
    "inventory": "inventory",
    "callback": "callback",
    "connection": "connection",
    "become": "become",
    "cache": "cache",
    "vars": "vars",
}


def names() -> list[tuple[str, str]]:
    found = []
    for directory, plugin_type in PLUGIN_DIRS.items():
        for path in sorted(Path("plugins", directory).glob("*.py")):
            if path.name != "__init__.py":
                found.append((plugin_type, path.stem))
    for directory, plugin_type in LISTED_TYPES.items():
        if not any(Path("plugins", directory).glob("*")):
            continue
        proc = subprocess.run(
            ["ansible-doc", "-t", plugin_type, "--list", "--json", COLLECTION],
            capture_output=True, text=True, check=False,
        )
        listed = json.loads(proc.stdout or "{}") if proc.returncode == 0 else {}
        if not listed:
            found.append((plugin_type, f"<none listed from plugins/{directory}>"))
        for fqcn in sorted(listed):
            found.append((plugin_type, fqcn.removeprefix(COLLECTION + ".")))
    for role in sorted(Path("roles").glob("*/")):
        if role.is_dir():
            found.append(("role", role.name))
    return found


def main() -> int:
    failures = 0
    todo = names()
    if not any(kind == "module" for kind, _ in todo):
        print("ERROR: no modules found under plugins/modules/", file=sys.stderr)
        return 1
    for plugin_type, name in todo:
        fqcn = f"{COLLECTION}.{name}"
        proc = subprocess.run(
            ["ansible-doc", "-t", plugin_type, fqcn],
            capture_output=True,
            text=True,
            check=False,
        )
        problems = []
        if proc.returncode:
            problems.append(f"exit code {proc.returncode}")
        stderr = IGNORED_STDERR.sub("", proc.stderr)
        if "[WARNING]" in stderr or "[ERROR]" in stderr or "ERROR!" in stderr:
            problems.append("warnings/errors on stderr")
        if not proc.stdout.strip():
            problems.append("no output")
        if problems:
            failures += 1
            print(f"FAIL ansible-doc -t {plugin_type} {fqcn}: {', '.join(problems)}")
            sys.stdout.write(stderr)
        else:
            print(f"ok   ansible-doc -t {plugin_type} {fqcn} ({len(proc.stdout.splitlines())} lines)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
