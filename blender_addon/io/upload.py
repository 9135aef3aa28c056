"""Sending a file to an engine on another machine: chunked, resumable, identified by its content.

The engine names an upload by kind and SHA-256, so `upload_file` first asks how much of this content it
already has (`upload_begin`): nothing for a new file, the whole file for an avatar or video sent before,
a prefix for an upload that was interrupted (a dropped link, a closed Blender, a restarted engine); then
it sends the rest in chunks, each one request, never the whole file in one message or in memory.
An avatar package folder is sent as a zip written byte-for-byte the same each time, so its hash, and so
the engine's copy, stays the same while the package does.
"""

from __future__ import annotations

import shutil
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .wire.digest import sha256_file

CHUNK_BYTES = 4 << 20  # the engine accepts up to 8 MiB a chunk
PACKAGE_FILES = ("avatar.json", "topology.npz", "weights.safetensors")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)

Progress = Callable[[int, int], None]


class UploadCancelled(RuntimeError):
    """The user stopped an upload between two chunks; the engine keeps what it has (the next try resumes)."""


def upload_file(client: Any, kind: str, path: str | Path, name: str | None = None, chunk_bytes: int = CHUNK_BYTES,
                on_progress: Progress | None = None, cancel: threading.Event | None = None) -> str:  # fmt: skip
    """Make sure the engine holds this file's content -> its upload id (for `track` / `load_avatar`).
    `on_progress(sent, size)` after each chunk; `cancel` is checked before each one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{kind} '{path}': not a file (an engine on another machine needs a file to upload)")
    size = path.stat().st_size
    state = client.upload_begin(kind, name or path.name, size, sha256_file(path))
    with path.open("rb") as handle:
        while not state["complete"]:
            offset = int(state["offset"])
            if cancel is not None and cancel.is_set():
                raise UploadCancelled(f"upload of '{path}' stopped at {offset} of {size} bytes (the engine keeps them)")
            handle.seek(offset)
            state = client.upload_chunk(state["upload_id"], offset, handle.read(chunk_bytes))
            if on_progress is not None:
                on_progress(int(state["offset"]), size)
    return str(state["upload_id"])


def package_archive(package: str | Path, folder: str | Path) -> Path:
    """The avatar package as a zip: a .zip package as it is, a folder zipped into `folder` reproducibly
    (sorted members, fixed dates, stored: the weights do not compress), so the same package hashes the same."""
    package = Path(package)
    if package.is_file():
        return package
    missing = [name for name in PACKAGE_FILES if not (package / name).is_file()]
    if missing:
        raise FileNotFoundError(f"avatar package '{package}': missing {', '.join(missing)}")
    archive = Path(folder) / f"{package.name or 'avatar'}.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_STORED) as out:
        for name in PACKAGE_FILES:
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.external_attr = 0o644 << 16
            with (package / name).open("rb") as source, out.open(info, "w") as target:
                shutil.copyfileobj(source, target, 1 << 20)
    return archive
