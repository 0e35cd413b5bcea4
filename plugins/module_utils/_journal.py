# Copyright (c) 2026, monoz.link contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The delivery journal: a JSON-lines record of confirmed downlinks.

Private to the monoz.link collection: not a public API, it may change without notice.

One line per delivery the API confirmed with HTTP 200, keyed by a digest of
everything that reaches the device (org, ICCID, topic, QoS, format, retain,
payload), never the API key.  A re-run skips what is already here, so a push
is idempotent and an interrupted push resumes where it stopped.

Crash safety: every line goes out in one ``write`` to a file opened for
append and is flushed at once, so ``kill -9`` of the process loses nothing the
kernel has seen; ``fsync`` runs every ``FSYNC_EVERY`` lines and on close, so
a power cut loses at most that small group.  A torn last line (a crash in the
middle of a write) is ignored on load.
"""

from __future__ import annotations

import json
import os
import threading
import time

from ._errors import TaskError

FSYNC_EVERY = 64
JOURNAL_VERSION = 1


class JournalError(TaskError):
    """The journal cannot be read or written; the message names the path."""


class Journal:
    def __init__(self, path: str) -> None:
        self.path = path
        self.digests: set[str] = set()
        self.ignored_lines = 0
        self._lock = threading.Lock()
        self._handle = None
        self._unsynced = 0

    def load(self) -> Journal:
        """Read the digests already journaled; a missing file is an empty journal."""
        try:
            with open(self.path, "rb") as handle:
                for raw_line in handle:
                    digest = self._digest_of(raw_line)
                    if digest is None:
                        self.ignored_lines += 1
                    else:
                        self.digests.add(digest)
        except FileNotFoundError:
            directory = os.path.dirname(os.path.abspath(self.path))
            if not os.path.isdir(directory):
                raise JournalError(f"journal {self.path}: directory {directory} does not exist") from None
        except OSError as exc:
            raise JournalError(f"journal {self.path} cannot be read: {exc.strerror or exc}") from None
        return self

    @staticmethod
    def _digest_of(raw_line: bytes) -> str | None:
        if not raw_line.strip():
            return None
        try:
            record = json.loads(raw_line)
        except ValueError:  # a torn line from a crash mid-write
            return None
        digest = record.get("digest") if isinstance(record, dict) else None
        return digest if isinstance(digest, str) else None

    def __contains__(self, digest: str) -> bool:
        return digest in self.digests

    def open_for_append(self) -> None:
        try:
            handle = open(self.path, "ab")
            # A crash may have left a torn line without its newline: start on
            # a fresh line so the next record is not glued to the fragment.
            if handle.tell() > 0:
                with open(self.path, "rb") as reader:
                    reader.seek(-1, os.SEEK_END)
                    if reader.read(1) != b"\n":
                        handle.write(b"\n")
        except OSError as exc:
            raise JournalError(f"journal {self.path} cannot be written: {exc.strerror or exc}") from None
        self._handle = handle

    def record(self, digest: str, org_id: str, iccid: str, status_code: int) -> None:
        """Append one confirmed delivery; safe to call from many threads."""
        line = json.dumps(
            {"v": JOURNAL_VERSION, "digest": digest, "org": org_id, "iccid": iccid,
             "status_code": status_code, "ts": round(time.time(), 3)},
            separators=(",", ":"),
        ).encode("utf-8") + b"\n"
        with self._lock:
            self.digests.add(digest)
            # One write per line under the lock: concurrent workers never
            # interleave their records.
            self._handle.write(line)
            self._handle.flush()
            self._unsynced += 1
            if self._unsynced >= FSYNC_EVERY:
                os.fsync(self._handle.fileno())
                self._unsynced = 0

    def close(self) -> None:
        with self._lock:
            if self._handle is None:
                return
            try:
                self._handle.flush()
                os.fsync(self._handle.fileno())
            finally:
                self._handle.close()
                self._handle = None
