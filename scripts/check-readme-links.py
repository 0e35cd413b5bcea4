#!/usr/bin/env python3
"""Fail when README.md links to a file that the built collection does not contain.

Galaxy and Automation Hub render the README from the tarball, so a relative
link into a build-ignored folder (emulator/, bench/, ...) is a dead link
there. Usage: check-readme-links.py TARBALL [README]
Relative links (Markdown links and images, HTML src/href) must name a file or
directory in TARBALL; absolute URLs and in-page anchors are not checked.
"""

from __future__ import annotations

import posixpath
import re
import sys
import tarfile
from pathlib import Path

MARKDOWN_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"""\b(?:src|href)\s*=\s*["']([^"']+)["']""")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*(\S+)", re.M)
FENCE = re.compile(r"^(```|~~~).*?^\1", re.M | re.S)


def links(text: str) -> list[str]:
    text = FENCE.sub("", text)  # code blocks hold no links
    found = MARKDOWN_LINK.findall(text) + HTML_LINK.findall(text) + REFERENCE_LINK.findall(text)
    return [link for link in found if not re.match(r"^([a-z][a-z0-9+.-]*:|#|//)", link, re.I)]


def main() -> int:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    readme = Path(sys.argv[2] if len(sys.argv) == 3 else "README.md")
    with tarfile.open(sys.argv[1]) as tar:
        members = {posixpath.normpath(name) for name in tar.getnames()}
    # a directory counts when any member lies under it
    directories = {posixpath.dirname(name) for name in members}
    while "" not in directories and directories:
        parents = {posixpath.dirname(name) for name in directories} - directories
        if not parents:
            break
        directories |= parents
    bad = []
    for link in links(readme.read_text(encoding="utf-8")):
        target = posixpath.normpath(link.split("#", 1)[0].split("?", 1)[0])
        if target in (".", ""):
            continue
        if target not in members and target not in directories:
            bad.append(link)
    for link in bad:
        print(f"FAIL: {readme} links to {link}, which is not in {Path(sys.argv[1]).name} "
              "(build-ignored or missing): Galaxy would show a dead link; use an absolute URL", file=sys.stderr)
    if not bad:
        print(f"ok: every relative link in {readme} is in {Path(sys.argv[1]).name}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
