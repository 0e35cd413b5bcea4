"""The delivery journal: re-runs send nothing new, interrupted pushes resume, torn lines are survived.

The re-run test runs on both paths (the journal is written by the module
process on one, by the controller's worker on the other); resume and torn-line
recovery are journal logic shared by both and run on the default path only.
"""

from __future__ import annotations

import json

from e2e_support import iccid, unwrapped


def journal_records(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_journal_rerun_sends_nothing_new(emu, ansible, execution, tmp_path):
    journal = tmp_path / "push.jsonl"
    devices = [iccid(i) for i in range(110, 120)]
    call = {"devices": devices, "payload": {"fw": "1.2.3"}, "journal": str(journal)}

    first = ansible.downlink([call], {"default": emu.profile()})
    assert first.rc == 0, first.describe()
    assert first.call(0)["changed"] is True
    assert first.call(0)["summary"]["sent"] == 10
    assert sorted(r["iccid"] for r in journal_records(journal)) == sorted(devices)

    second = ansible.downlink([call], {"default": emu.profile()})
    assert second.rc == 0, second.describe()
    result = second.call(0)
    assert result["changed"] is False
    assert {k: result["summary"][k] for k in ("total", "sent", "failed", "skipped")} == {
        "total": 10, "sent": 0, "failed": 0, "skipped": 10,
    }
    assert [(r["iccid"], r["status"]) for r in result["results"]] == [(d, "skipped") for d in devices]
    assert emu.stats()["requests"] == 10  # all from the first run
    assert len(journal_records(journal)) == 10
    emu.received_counts(wait_total=10)
    emu.barrier()
    assert {d: len(m) for d, m in emu.all_received().items()} == {d: 1 for d in devices}


def test_journal_resume_after_failures_sends_only_the_failed_devices(emu, ansible, tmp_path):
    journal = tmp_path / "push.jsonl"
    devices = [iccid(i) for i in range(120, 140)]
    failing = [devices[2], devices[9], devices[17]]
    call = {"devices": devices, "payload": "cfg-v2", "journal": str(journal), "concurrency": 4}
    emu.set_faults(per_iccid={device: [500] for device in failing})

    first = ansible.downlink([call], {"default": emu.profile()})
    assert first.rc != 0, first.describe()
    assert first.call(0)["summary"]["sent"] == 17
    failed = [r for r in first.call(0)["results"] if r["status"] == "failed"]
    assert sorted(r["iccid"] for r in failed) == sorted(failing)
    assert all(r["msg"].startswith("HTTP 500") for r in failed), failed
    # Only confirmed deliveries are journaled.
    assert sorted(r["iccid"] for r in journal_records(journal)) == sorted(set(devices) - set(failing))
    requests_after_first = emu.stats()["requests"]
    assert requests_after_first == 20

    emu.set_faults()  # the service is healthy again
    second = ansible.downlink([call], {"default": emu.profile()})
    assert second.rc == 0, second.describe()
    result = second.call(0)
    assert result["changed"] is True
    assert result["summary"]["sent"] == 3 and result["summary"]["skipped"] == 17
    assert sorted(r["iccid"] for r in result["results"] if r["status"] == "sent") == sorted(failing)
    assert emu.stats()["requests"] == requests_after_first + 3
    assert sorted(m["iccid"] for m in emu.messages()[17:]) == sorted(failing)
    emu.received_counts(wait_total=20)
    emu.barrier()
    assert {d: [m["payload"] for m in msgs] for d, msgs in emu.all_received().items()} == {
        d: ["cfg-v2"] for d in devices
    }


def test_journal_torn_last_line_is_tolerated(emu, ansible, tmp_path):
    journal = tmp_path / "push.jsonl"
    devices = [iccid(i) for i in range(140, 145)]
    new_device = iccid(145)

    first = ansible.downlink([{"devices": devices, "payload": "m", "journal": str(journal)}], {"default": emu.profile()})
    assert first.rc == 0, first.describe()
    torn = '{"v":1,"digest":"0123abcd'
    with journal.open("a") as handle:  # a crash in the middle of a write
        handle.write(torn)

    second = ansible.downlink(
        [{"devices": devices + [new_device], "payload": "m", "journal": str(journal)}], {"default": emu.profile()}
    )
    assert second.rc == 0, second.describe()
    result = second.call(0)
    assert [r["status"] for r in result["results"]] == ["skipped"] * 5 + ["sent"]
    assert "unreadable line" in unwrapped(second.output), second.describe()
    # The torn fragment stays on its own line; every other line is a whole record.
    lines = journal.read_text().splitlines()
    assert lines.count(torn) == 1
    records = [json.loads(line) for line in lines if line != torn]
    assert sorted(r["iccid"] for r in records) == sorted(devices + [new_device])
    assert emu.stats()["requests"] == 6
    assert len(emu.received_exactly(new_device, 1)) == 1
