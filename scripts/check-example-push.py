#!/usr/bin/env python3
"""Run the shipped fleet push example against a running emulator and check what every device received.

  check-example-push.py COLLECTIONS_DIR EMULATOR_URL

COLLECTIONS_DIR holds ansible_collections/monoz/link installed from the built
tarball; its docs/examples/fleet_push.yml runs with ansible-playbook from PATH
(the core under test), credentials from the MONOZ_* environment variables as
the example documents, and nothing of the developer's Ansible configuration.
Passes when every device of the example's devices.csv received exactly one
message over MQTT, and a second run sends nothing (the journal).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

ORG, API_KEY = "DEMO", "demo-api-key"


def control(url: str, method: str = "GET") -> dict:
    request = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(request, timeout=120) as answer:  # noqa: S310 - loopback emulator
        return json.load(answer)


def run_example(collections: Path, api_url: str, workdir: Path) -> subprocess.CompletedProcess:
    examples = collections / "ansible_collections" / "monoz" / "link" / "docs" / "examples"
    (workdir / "ansible.cfg").write_text("[defaults]\n", encoding="utf-8")
    (workdir / "inventory.ini").write_text(
        f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}\n", encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MONOZ_"))}
    env.update(
        ANSIBLE_CONFIG=str(workdir / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(collections),
        ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
        ANSIBLE_HOME=str(workdir / "ansible-home"),
        ANSIBLE_LOCAL_TEMP=str(workdir / "tmp"),
        ANSIBLE_NOCOLOR="1",
        MONOZ_ORG_ID=ORG,
        MONOZ_API_KEY=API_KEY,
        MONOZ_API_URL=api_url,
        FLEET_PUSH_STATE_DIR=str(workdir / "state"),
    )
    command = ["ansible-playbook", "-i", str(workdir / "inventory.ini"), str(examples / "fleet_push.yml")]
    print("+", " ".join(command), flush=True)
    proc = subprocess.run(command, env=env, cwd=workdir, capture_output=True, text=True, check=False)
    sys.stdout.write(proc.stdout[-4000:])
    sys.stderr.write(proc.stderr[-4000:])
    return proc


def main() -> int:
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    collections, base = Path(sys.argv[1]).resolve(), sys.argv[2].rstrip("/")
    examples = collections / "ansible_collections" / "monoz" / "link" / "docs" / "examples"
    with (examples / "devices.csv").open(encoding="utf-8") as handle:
        iccids = [row["iccid"] for row in csv.DictReader(handle)]
    control(f"{base}/_emulator/reset", "POST")
    problems = []
    with tempfile.TemporaryDirectory(prefix="monoz-example-") as tmp:
        first = run_example(collections, f"{base}/api/v1", Path(tmp))
        if first.returncode:
            problems.append(f"the example failed (exit {first.returncode})")
        counts = control(f"{base}/_emulator/received?wait_total={len(iccids)}&timeout=60")["by_device"]
        wrong = {iccid: counts.get(f"{ORG}/{iccid}", 0) for iccid in iccids if counts.get(f"{ORG}/{iccid}", 0) != 1}
        if wrong:
            problems.append(f"{len(wrong)} of {len(iccids)} devices did not receive exactly one message: "
                            f"{dict(list(wrong.items())[:5])}")
        second = run_example(collections, f"{base}/api/v1", Path(tmp))
        if second.returncode:
            problems.append(f"the second run failed (exit {second.returncode})")
        published = control(f"{base}/_emulator/stats")["published"]
        if published != len(iccids):
            problems.append(f"the second run published again: {published} messages in all for {len(iccids)} devices")
    for problem in problems:
        print(f"FAIL: {problem}", file=sys.stderr)
    if not problems:
        print(f"ok: the example pushed to all {len(iccids)} devices once; the re-run sent nothing")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
