"""The API key appears nowhere: not at -vvv, not in results, not in the journal."""

from __future__ import annotations

import json
import socket

from e2e_support import API_KEY, WRONG_KEY, iccid


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_api_key_never_appears_in_output_results_or_journal(emu, ansible, execution, tmp_path):
    journal = tmp_path / "push.jsonl"
    good, batch = iccid(150), [iccid(151), iccid(152)]
    profiles = {
        "default": emu.profile(),
        "wrong": emu.profile(api_key=WRONG_KEY),
        "refused": emu.profile(api_url=f"http://127.0.0.1:{closed_port()}/api/v1"),
    }
    run = ansible.downlink(
        [
            {"iccid": good, "payload": "ok", "journal": str(journal)},
            {"iccid": good, "payload": "wrong key", "profile": "wrong"},
            {"devices": batch, "payload": "wrong key", "profile": "wrong"},
            {"iccid": good, "payload": "refused", "profile": "refused", "retries": 1},
        ],
        profiles,
        verbosity=3,
    )

    assert run.rc != 0, run.describe()
    # Each call did what it is here for, so the search below covers every path.
    sent, refused_single, refused_batch, unreachable = run.calls
    assert sent["status_code"] == 200, sent
    assert refused_single["status_code"] == 401, refused_single
    assert refused_batch["results"][0]["status_code"] == 401, refused_batch
    assert unreachable["failed"] is True and unreachable["attempts"] == 2, unreachable
    assert "Could not reach the API" in unreachable["msg"], unreachable["msg"]
    assert "refused" in unreachable["msg"].lower(), unreachable["msg"]
    assert journal.stat().st_size > 0
    # -vvv shows the module's remote execution only on the module path: the
    # parametrisation really runs both paths.
    assert ("AnsiballZ_monoz_downlink" in run.output) == (execution == "module"), run.describe()

    for secret in (API_KEY, WRONG_KEY):
        assert secret not in run.stdout
        assert secret not in run.stderr
        assert secret not in json.dumps(run.result, ensure_ascii=False)
        assert secret not in journal.read_text()
    assert len(emu.received_exactly(good, 1)) == 1
