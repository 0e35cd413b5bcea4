"""Issue 6, part 2: kill -9 of ansible-playbook in the middle of a push, then a re-run.

The push sends one message to each of 800 devices, 8 at a time, with 20 ms
of emulator latency, so it runs for a couple of seconds.  Once the journal
holds some lines, the whole process group (ansible-playbook, its workers and
a module process if any) gets SIGKILL.  A torn, newline-less record is then
appended to the journal, as a crash in the middle of a write would leave it.

The re-run must complete the fleet and send nothing that is journaled.

The one unavoidable exception, and its bound: a request that was in flight
at the moment of the kill may still be published by the server (the
emulator, like a real server, does not undo a publish because its client
went away), while the killed process never got to journal the answer.  Such
a device gets the message twice.  There are at most ``concurrency`` requests
in flight at any time, so at most ``concurrency`` devices can be affected;
each of them is identified exactly (received before the re-run, not in the
journal) and gets exactly two copies, every other device exactly one.
"""

from __future__ import annotations

import time

from rel_support import assert_no_secret_in_file, iccid, kill_process_group, read_journal

DEVICES = 800
CONCURRENCY = 8
KILL_AFTER_LINES = 100
TORN_LINE = b'{"v":1,"digest":"5f0c0ffee0ddf00d' + b"0" * 24  # no closing quote, brace or newline


def _journal_lines(path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def test_kill_9_mid_push_then_rerun_resends_nothing_journaled(ansible, emu, tmp_path, execution):
    journal = tmp_path / "push.jsonl"
    devices = [iccid(index) for index in range(DEVICES)]
    extra_vars = {**emu.creds(), "rel_args": {
        "devices": devices, "payload": {"apn": "iot.crash.example"}, "qos": 1,
        "concurrency": CONCURRENCY, "journal": str(journal),
    }}
    emu.process.set_faults(latency_ms=20)
    proc, log_path = ansible.start("downlink.yml", extra_vars, verbosity=3)
    try:
        # Waiting for a condition (the journal has grown), with a deadline.
        deadline = time.monotonic() + 120
        while _journal_lines(journal) < KILL_AFTER_LINES and proc.poll() is None:
            assert time.monotonic() < deadline, "the journal did not grow within 120 s"
            time.sleep(0.01)
        assert proc.poll() is None, "the push finished before it could be killed: make it longer"
        kill_process_group(proc)
    finally:
        if proc.poll() is None:
            kill_process_group(proc)
    assert proc.returncode == -9

    emu.process.set_faults()
    stuck = emu.quiesce_after_kill()
    assert stuck <= CONCURRENCY
    emu.barrier()
    records, unreadable = read_journal(journal)
    assert unreadable == 0, "kill -9 tore a journal line: each record must be one write"
    journaled = {record["iccid"] for record in records}
    assert len(records) == len(journaled), "a device was journaled twice"
    before = emu.receipts()
    assert all(len(messages) == 1 for messages in before.values())
    assert journaled <= set(before), "journaled but never delivered"
    in_flight = set(before) - journaled
    assert KILL_AFTER_LINES <= len(journaled) < DEVICES
    assert len(in_flight) <= CONCURRENCY, f"{len(in_flight)} delivered-but-unjournaled devices > concurrency"
    print(f"[{execution}] at the kill: {len(journaled)} journaled, {len(in_flight)} published but not journaled,"
          f" {stuck} request(s) abandoned mid-upload")

    # A crash in the middle of a write leaves a torn last line.
    with journal.open("ab") as handle:
        handle.write(TORN_LINE)

    emu.process.set_faults()
    run = ansible.run("downlink.yml", extra_vars, secret_files=(journal,))
    for path in (log_path, ansible.workdir / "stdout-1.txt"):
        assert_no_secret_in_file(path)
    result = run.result
    assert run.rc == 0, run.describe()
    assert result["summary"] == {"total": DEVICES, "sent": DEVICES - len(journaled), "failed": 0,
                                 "skipped": len(journaled), "would_send": 0}, result["summary"]
    statuses = {row["iccid"]: row["status"] for row in result["results"]}
    assert {device for device, status in statuses.items() if status == "skipped"} == journaled
    assert any("ignored 1 unreadable line" in warning for warning in result.get("warnings", [])), result.get("warnings")

    emu.settle(abandoned=stuck)
    after = emu.receipts()
    assert set(after) == set(devices)
    copies = {device: len(after[device]) for device in devices}
    assert all(copies[device] == 1 for device in journaled), "a journaled device was re-sent"
    assert all(copies[device] == 2 for device in in_flight)
    assert all(copies[device] == 1 for device in set(devices) - journaled - in_flight)

    # The torn fragment stays (ignored) and every record after it is whole.
    records, unreadable = read_journal(journal)
    assert unreadable == 1
    assert len(records) == DEVICES and {record["iccid"] for record in records} == set(devices)

    # And a third run sends nothing at all.
    emu.reset()
    again = ansible.run("downlink.yml", extra_vars, secret_files=(journal,))
    assert again.rc == 0, again.describe()
    assert again.result["changed"] is False
    assert again.result["summary"]["skipped"] == DEVICES
    assert emu.process.stats()["requests"] == 0
