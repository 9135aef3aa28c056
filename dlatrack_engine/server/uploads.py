"""Files a client on another machine sends the engine: videos and avatar packages, chunked and resumable.

An upload is named by what it holds (`<kind>-<sha256><suffix>`), not by the client's path: the same file
sent twice is stored once, an avatar the engine already has is not sent again, and an interrupted upload
resumes where the engine's copy ends (`upload_begin` answers the offset), across connections and engine
restarts. Partial files live in `<state>/uploads/partial/`, finished ones in `<state>/uploads/files/`,
and nothing is written anywhere else. Every size is bounded before a byte is stored (file size, chunk
size, uploads in progress, the store's total), the name is checked against one strict pattern, the bytes
must hash to the announced SHA-256, and an upload idle for `idle_s` is deleted.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlatrack_engine.server.jobqueue import JobError
from dlatrack_engine.wire.digest import sha256_file

log = logging.getLogger(__name__)

KINDS = {"video": None, "avatar": ".zip"}  # kind -> the only suffix it may have (None: any safe suffix)
MAX_CHUNK_BYTES = 8 << 20
DEFAULT_MAX_FILE_BYTES = 16 << 30
DEFAULT_MAX_STORE_BYTES = 64 << 30
DEFAULT_IDLE_S = 3600.0
MAX_IN_PROGRESS = 16
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")
_UPLOAD_ID = re.compile(r"^(video|avatar)-[0-9a-f]{64}(\.[a-z0-9]{1,8})?$")


@dataclass(frozen=True)
class UploadLimits:
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES
    max_store_bytes: int = DEFAULT_MAX_STORE_BYTES
    idle_s: float = DEFAULT_IDLE_S
    max_chunk_bytes: int = MAX_CHUNK_BYTES
    max_in_progress: int = MAX_IN_PROGRESS


def _suffix(kind: str, name: str) -> str:
    suffix = Path(name).suffix.lower()
    required = KINDS[kind]
    if required is not None and suffix != required:
        raise JobError("bad_argument", f"upload_begin: an {kind} is sent as a {required} file, got name {name!r}")
    if suffix and not _SUFFIX.fullmatch(suffix):
        raise JobError("bad_argument", f"upload_begin: name {name!r} has an unusable suffix {suffix!r}")
    return suffix


def check_upload_id(upload_id: Any, kind: str, op: str) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id) or not upload_id.startswith(kind + "-"):
        raise JobError("bad_argument", f"{op}: {kind} upload id {str(upload_id)[:90]!r} is not one upload_begin gave")
    return upload_id


class UploadStore:
    """Thread-safe; every method validates its arguments and raises JobError with a protocol error code."""

    def __init__(self, root: Path, limits: UploadLimits | None = None) -> None:
        self.limits = limits or UploadLimits()
        self.partial_dir, self.files_dir = root / "partial", root / "files"
        self._lock = threading.Lock()

    def _paths(self, upload_id: str) -> tuple[Path, Path, Path]:
        """(partial data, partial's announced size, finished file)."""
        return (self.partial_dir / f"{upload_id}.part", self.partial_dir / f"{upload_id}.size",
                self.files_dir / upload_id)  # fmt: skip

    def _expire_idle(self) -> None:
        now = time.time()
        for size_file in self.partial_dir.glob("*.size"):
            part = size_file.with_suffix(".part")
            touched = max((p.stat().st_mtime for p in (part, size_file) if p.exists()), default=0.0)
            if now - touched > self.limits.idle_s:
                log.info("upload %s idle for over %.0f s: deleted", size_file.stem, self.limits.idle_s)
                part.unlink(missing_ok=True)
                size_file.unlink(missing_ok=True)

    def _stored_bytes(self) -> int:
        return sum(p.stat().st_size for folder in (self.partial_dir, self.files_dir) for p in folder.glob("*"))

    def begin(self, kind: Any, name: Any, size: Any, sha256: Any) -> dict[str, Any]:
        """Start or resume an upload -> {upload_id, offset (bytes the engine has), size, complete}."""
        if kind not in KINDS:
            raise JobError("bad_argument", f"upload_begin: 'kind' must be one of {sorted(KINDS)}, got {kind!r}")
        if not isinstance(name, str) or len(name) > 255 or "/" in name or "\\" in name or "\x00" in name:
            raise JobError("bad_argument", "upload_begin: 'name' must be a plain file name (no folders)")
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise JobError("bad_argument", f"upload_begin: 'size' must be a positive integer, got {size!r}")
        if size > self.limits.max_file_bytes:
            raise JobError("upload_too_large", f"upload_begin: {size} bytes; this engine takes files of at most "
                           f"{self.limits.max_file_bytes} bytes (dlatrack serve --max-upload-gb)")  # fmt: skip
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise JobError("bad_argument", "upload_begin: 'sha256' must be 64 lowercase hex digits")
        upload_id = f"{kind}-{sha256}{_suffix(kind, name)}"
        part, size_file, done = self._paths(upload_id)
        with self._lock:
            if done.is_file() and done.stat().st_size == size:
                return {"upload_id": upload_id, "offset": size, "size": size, "complete": True}
            self.partial_dir.mkdir(parents=True, exist_ok=True)
            self.files_dir.mkdir(parents=True, exist_ok=True)
            self._expire_idle()
            if size_file.exists() and size_file.read_text() != str(size):
                raise JobError("upload_mismatch", f"upload_begin: {upload_id} is in progress with another size")
            if not size_file.exists():
                if len(list(self.partial_dir.glob("*.size"))) >= self.limits.max_in_progress:
                    idle = f"{self.limits.idle_s:.0f} s"
                    raise JobError("too_many_uploads", f"upload_begin: {self.limits.max_in_progress} uploads are "
                                   f"already in progress (each is deleted after {idle} idle)")  # fmt: skip
                if self._stored_bytes() + size > self.limits.max_store_bytes:
                    raise JobError("storage_full", f"upload_begin: storing {size} more bytes would pass the "
                                   f"engine's upload store limit of {self.limits.max_store_bytes} bytes "
                                   f"({self.files_dir.parent})")  # fmt: skip
                size_file.write_text(str(size))
                part.write_bytes(b"")
            offset = part.stat().st_size
        log.info("upload %s: %s at %d of %d bytes", upload_id, "resumed" if offset else "started", offset, size)
        return {"upload_id": upload_id, "offset": offset, "size": size, "complete": False}

    def chunk(self, upload_id: Any, offset: Any, data: Any) -> dict[str, Any]:
        """Append `data` at `offset` (which must be where the engine's copy ends); the last chunk checks the
        SHA-256 and moves the file into the store -> {upload_id, offset, size, complete}."""
        if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
            raise JobError("bad_argument", f"upload_chunk: 'upload_id' {str(upload_id)[:90]!r} is not an upload id")
        if not isinstance(data, bytes) or not data:
            raise JobError("bad_argument", "upload_chunk: the 'data' blob must hold the chunk's bytes")
        if len(data) > self.limits.max_chunk_bytes:
            raise JobError("chunk_too_large", f"upload_chunk: {len(data)} bytes; chunks are at most "
                           f"{self.limits.max_chunk_bytes} bytes")  # fmt: skip
        part, size_file, done = self._paths(upload_id)
        with self._lock:
            if not size_file.exists() or not part.exists():
                raise JobError("upload_not_found", f"upload_chunk: no upload {upload_id} in progress (finished, "
                               "idle too long, or never begun): call upload_begin")  # fmt: skip
            size, have = int(size_file.read_text()), part.stat().st_size
            if not isinstance(offset, int) or isinstance(offset, bool) or offset != have:
                raise JobError("bad_offset", f"upload_chunk: offset {offset!r}, but the engine has {have} bytes "
                               "of this upload: send from there (upload_begin answers it too)")  # fmt: skip
            if have + len(data) > size:
                raise JobError("bad_argument", f"upload_chunk: {have} + {len(data)} bytes pass the announced {size}")
            with part.open("ab") as handle:
                handle.write(data)
            size_file.touch()
            have += len(data)
            if have < size:
                return {"upload_id": upload_id, "offset": have, "size": size, "complete": False}
            digest = sha256_file(part)
            expected = upload_id.split("-", 1)[1][:64]
            if digest != expected:
                part.unlink(missing_ok=True)
                size_file.unlink(missing_ok=True)
                raise JobError("upload_corrupt", f"upload_chunk: {upload_id}: the bytes hash to {digest}, not the "
                               "announced SHA-256; the partial upload was deleted, send it again")  # fmt: skip
            part.replace(done)
            size_file.unlink(missing_ok=True)
        log.info("upload %s complete (%d bytes)", upload_id, size)
        return {"upload_id": upload_id, "offset": size, "size": size, "complete": True}

    def finished(self, upload_id: str, op: str) -> Path:
        """The stored file of a finished upload (JobError `upload_not_found` otherwise)."""
        done = self._paths(upload_id)[2]
        if not done.is_file():
            raise JobError("upload_not_found", f"{op}: upload {upload_id} is not on this engine (finish it first)")
        return done


