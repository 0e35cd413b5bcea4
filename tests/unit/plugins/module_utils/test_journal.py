# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Journal: JSON lines of confirmed deliveries, crash-tolerant and thread-safe."""

from __future__ import annotations

import json
import threading
from unittest import mock

import pytest

from ansible_collections.monoz.link.plugins.module_utils import _journal
from ansible_collections.monoz.link.plugins.module_utils._journal import FSYNC_EVERY, Journal, JournalError

DIGEST_A = "a" * 64
DIGEST_B = "b" * 64


def line(digest: str, **extra) -> bytes:
    record = {"v": 1, "digest": digest, "org": "mti", "iccid": "1", "status_code": 200, "ts": 1.0, **extra}
    return json.dumps(record).encode() + b"\n"


def write_records(path, digests) -> None:
    journal = Journal(str(path)).load()
    journal.open_for_append()
    for digest in digests:
        journal.record(digest, "mti", "8988280666000000001", 200)
    journal.close()


def test_missing_file_is_an_empty_journal(tmp_path):
    journal = Journal(str(tmp_path / "new.jsonl")).load()
    assert journal.digests == set()
    assert journal.ignored_lines == 0
    assert DIGEST_A not in journal
    assert not (tmp_path / "new.jsonl").exists()  # loading creates nothing


def test_load_reads_every_digest(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(line(DIGEST_A) + line(DIGEST_B))
    journal = Journal(str(path)).load()
    assert journal.digests == {DIGEST_A, DIGEST_B}
    assert DIGEST_A in journal


def test_torn_last_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(line(DIGEST_A) + line(DIGEST_B)[:30])
    journal = Journal(str(path)).load()
    assert journal.digests == {DIGEST_A}
    assert journal.ignored_lines == 1


@pytest.mark.parametrize("bad", [b"not json\n", b"[1, 2]\n", b'{"digest": 5}\n', b'{"org": "mti"}\n'])
def test_unreadable_lines_are_skipped_and_counted(tmp_path, bad):
    path = tmp_path / "j.jsonl"
    path.write_bytes(line(DIGEST_A) + bad + line(DIGEST_B))
    journal = Journal(str(path)).load()
    assert journal.digests == {DIGEST_A, DIGEST_B}
    assert journal.ignored_lines == 1


def test_append_after_a_torn_line_starts_a_new_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(line(DIGEST_A) + b'{"v":1,"dig')
    write_records(path, [DIGEST_B])
    lines = path.read_bytes().split(b"\n")
    assert lines[1] == b'{"v":1,"dig'
    assert json.loads(lines[2])["digest"] == DIGEST_B
    reloaded = Journal(str(path)).load()
    assert reloaded.digests == {DIGEST_A, DIGEST_B}
    assert reloaded.ignored_lines == 1


def test_append_to_a_clean_file_adds_no_blank_line(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(line(DIGEST_A))
    write_records(path, [DIGEST_B])
    assert path.read_bytes().count(b"\n") == 2
    assert Journal(str(path)).load().ignored_lines == 0


def test_record_writes_one_json_object_per_line_with_digest_org_iccid_and_no_key(tmp_path):
    path = tmp_path / "j.jsonl"
    write_records(path, [DIGEST_A, DIGEST_B])
    raw = path.read_bytes()
    assert raw.endswith(b"\n")
    records = [json.loads(text) for text in raw.decode().splitlines()]
    assert [r["digest"] for r in records] == [DIGEST_A, DIGEST_B]
    for record in records:
        assert record["org"] == "mti"
        assert record["iccid"] == "8988280666000000001"
        assert record["status_code"] == 200
        assert not {"api_key", "key", "X-API-Key"} & set(record)


def test_recorded_digest_is_known_at_once(tmp_path):
    journal = Journal(str(tmp_path / "j.jsonl")).load()
    journal.open_for_append()
    journal.record(DIGEST_A, "mti", "1", 200)
    assert DIGEST_A in journal
    journal.close()


def test_recorded_lines_survive_without_close(tmp_path):
    # flushed per line: a killed process loses nothing the kernel has seen
    path = tmp_path / "j.jsonl"
    journal = Journal(str(path)).load()
    journal.open_for_append()
    journal.record(DIGEST_A, "mti", "1", 200)
    assert Journal(str(path)).load().digests == {DIGEST_A}
    journal.close()


def test_concurrent_records_from_16_threads_stay_intact(tmp_path):
    path = tmp_path / "j.jsonl"
    journal = Journal(str(path)).load()
    journal.open_for_append()
    barrier = threading.Barrier(16)

    def worker(number: int) -> None:
        barrier.wait(timeout=10)
        for count in range(200):
            journal.record(f"{number:02d}-{count:03d}" + "x" * 500, "mti", str(number), 200)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    journal.close()
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    records = [json.loads(text) for text in lines[:-1]]
    assert len(records) == 3200
    assert len({r["digest"] for r in records}) == 3200
    reloaded = Journal(str(path)).load()
    assert len(reloaded.digests) == 3200
    assert reloaded.ignored_lines == 0


def test_missing_directory_gives_journal_error_naming_the_path(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "j.jsonl"
    with pytest.raises(JournalError) as info:
        Journal(str(path)).load()
    assert str(path) in str(info.value)
    assert "does not exist" in str(info.value)


def test_directory_as_journal_gives_journal_error_naming_the_path(tmp_path):
    with pytest.raises(JournalError) as info:
        Journal(str(tmp_path)).load()
    assert str(tmp_path) in str(info.value)


def test_unwritable_journal_gives_journal_error_naming_the_path(tmp_path):
    path = tmp_path / "gone" / "j.jsonl"
    journal = Journal(str(path))
    with pytest.raises(JournalError) as info:
        journal.open_for_append()
    assert str(path) in str(info.value)


def test_fsync_runs_every_fsync_every_lines_and_on_close(tmp_path):
    journal = Journal(str(tmp_path / "j.jsonl")).load()
    journal.open_for_append()
    with mock.patch.object(_journal.os, "fsync") as fsync:
        for count in range(2 * FSYNC_EVERY + 1):
            journal.record(f"d{count}", "mti", "1", 200)
        assert fsync.call_count == 2
        journal.close()
        assert fsync.call_count == 3


def test_fsync_is_not_called_per_line(tmp_path):
    journal = Journal(str(tmp_path / "j.jsonl")).load()
    journal.open_for_append()
    with mock.patch.object(_journal.os, "fsync") as fsync:
        for count in range(FSYNC_EVERY - 1):
            journal.record(f"d{count}", "mti", "1", 200)
        assert fsync.call_count == 0
        journal.close()


def test_close_twice_is_harmless(tmp_path):
    journal = Journal(str(tmp_path / "j.jsonl")).load()
    journal.open_for_append()
    journal.close()
    journal.close()
