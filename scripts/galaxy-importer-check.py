#!/usr/bin/env python3
"""Run galaxy-importer on a built collection tarball; fail on any ERROR or WARNING.

galaxy-importer exits non-zero only when the import aborts; problems Galaxy
would show on the collection's page (ansible-lint findings, docs that do not
render, a missing changelog) are only logged, as WARNING or ERROR lines.
This treats both as failures. Usage: galaxy-importer-check.py TARBALL
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    tarball = Path(sys.argv[1]).resolve()
    # it runs ansible-doc and ansible-lint from PATH (and skips them, with only a
    # warning, when absent): use the ones in this venv
    venv_bin = os.path.dirname(sys.executable)
    env = dict(
        os.environ,
        GALAXY_IMPORTER_CONFIG=str(HERE / "galaxy-importer.cfg"),
        PATH=venv_bin + os.pathsep + os.environ.get("PATH", ""),
    )
    # it writes importer_result.json into the working directory
    with tempfile.TemporaryDirectory(prefix="galaxy-importer-") as workdir:
        proc = subprocess.run(
            [sys.executable, "-m", "galaxy_importer.main", str(tarball)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    output = proc.stdout + proc.stderr
    sys.stdout.write(output)
    flagged = [line for line in output.splitlines() if line.startswith(("ERROR", "WARNING", "CRITICAL"))]
    if proc.returncode or flagged or "Importer processing completed successfully" not in output:
        print(f"galaxy-importer: FAILED (exit {proc.returncode}, {len(flagged)} warning/error lines)", file=sys.stderr)
        return 1
    print("galaxy-importer: accepted (no warnings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
