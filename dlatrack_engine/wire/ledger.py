"""The job folder's ledger (`files.jsonl`): what the engine itself wrote there, with size and SHA-256.

A resumed job must not trust a file only because it exists: a frame truncated by a full disk, a file the
user dropped into the folder or replaced by a link are not results. Every file the engine writes into a
job folder is appended here after it has been renamed into place, so a kill between the two leaves an
unrecorded file, which is simply recomputed. Readers trust a file when it is a regular file (not a link)
whose size matches its last record; resume and every served read also check the checksum.

One JSON object per line, the last record of a path wins: `{"path": "frames/000003.npz", "size": 1234,
"sha256": "..."}` or `{"path": ..., "removed": true}`. A torn last line (a kill mid-append) is ignored.
Torch-free: the add-on reads job folders with it.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

LEDGER_FILE = "files.jsonl"


@dataclass(frozen=True)
class Entry:
    size: int
    sha256: str


def digest(data: bytes | bytearray | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class FileLedger:
    """The records of one job folder; thread-safe, shared by every JobFolder of that folder in a process."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._entries: dict[str, Entry] = {}
        self._offset = 0  # bytes of the file parsed so far (whole lines only)
        self._verified: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) whose checksum matched
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        """Parse lines appended since the last call (by this process or another one, e.g. the engine)."""
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            self._entries, self._offset = {}, 0
            return
        if size < self._offset:  # replaced or truncated: start over
            self._entries, self._offset = {}, 0
        if size == self._offset:
            return
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            chunk = handle.read(size - self._offset)
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].splitlines():
            self._apply(line)
        self._offset += end

    def _apply(self, line: bytes) -> None:
        try:
            record = json.loads(line)
            path = record["path"]
            if record.get("removed"):
                self._entries.pop(path, None)
                return
            size, checksum = record["size"], record["sha256"]
        except (ValueError, KeyError, TypeError):
            return  # a torn or foreign line records nothing
        if isinstance(path, str) and isinstance(size, int) and isinstance(checksum, str):
            self._entries[path] = Entry(size, checksum)

    def _append(self, record: dict) -> None:
        self._refresh()
        line = json.dumps(record, separators=(",", ":")).encode("utf-8") + b"\n"
        with open(self.path, "ab") as handle:
            if handle.tell() > self._offset:  # a torn line left by a killed writer: end it first
                line = b"\n" + line
            handle.write(line)
        self._refresh()

    def record(self, relative: str, data: bytes | bytearray | memoryview) -> None:
        """`relative` (POSIX, under the folder) now holds exactly `data`."""
        with self._lock:
            self._append({"path": relative, "size": len(data), "sha256": digest(data)})
            self._verified.pop(relative, None)

    def forget(self, relative: str) -> None:
        with self._lock:
            self._append({"path": relative, "removed": True})
            self._verified.pop(relative, None)

    def get(self, relative: str) -> Entry | None:
        with self._lock:
            self._refresh()
            return self._entries.get(relative)

    def entries(self) -> dict[str, Entry]:
        with self._lock:
            self._refresh()
            return dict(self._entries)

    def was_verified(self, relative: str, stat: os.stat_result) -> bool:
        with self._lock:
            return self._verified.get(relative) == (stat.st_size, stat.st_mtime_ns)

    def mark_verified(self, relative: str, stat: os.stat_result) -> None:
        with self._lock:
            self._verified[relative] = (stat.st_size, stat.st_mtime_ns)


_LEDGERS: dict[str, FileLedger] = {}
_LEDGERS_GUARD = threading.Lock()


def ledger_for(root: Path) -> FileLedger:
    """The process-wide ledger object of the folder `root` (the server and the pipeline share it)."""
    key = os.path.abspath(root)
    with _LEDGERS_GUARD:
        if key not in _LEDGERS:
            _LEDGERS[key] = FileLedger(Path(key) / LEDGER_FILE)
        return _LEDGERS[key]
