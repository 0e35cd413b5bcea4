#!/usr/bin/env python3
"""Check the collection's docsite: every guide in DOCSITE/rst/ is listed in DOCSITE/extra-docs.yml
and every listed guide exists, and DOCSITE/links.yml names the issue tracker and the repository.

antsibull-docs lint-collection-docs checks the RST of listed guides; a guide
nobody listed is simply never published. Usage: check-docsite.py DOCSITE
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    docsite = Path(sys.argv[1])
    extra = yaml.safe_load((docsite / "extra-docs.yml").read_text(encoding="utf-8")) or {}
    listed = [name for section in extra.get("sections") or [] for name in section.get("toctree") or []]
    guides = sorted(path.stem for path in (docsite / "rst").glob("*.rst"))
    problems = [f"rst/{name}.rst is not listed in extra-docs.yml" for name in guides if name not in listed]
    problems += [f"extra-docs.yml lists {name}, but rst/{name}.rst does not exist" for name in listed
                 if name not in guides]
    links = yaml.safe_load((docsite / "links.yml").read_text(encoding="utf-8")) or {}
    descriptions = " ".join(link.get("description", "") for link in links.get("extra_links") or []).lower()
    problems += [f"links.yml has no extra_links entry for the {what}" for what in ("issue tracker", "repository")
                 if what not in descriptions]
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: {len(guides)} guides listed ({', '.join(guides)}); links.yml names the issue tracker and repository")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
