"""The one atomic file write: a temporary name in the same folder, flushed to disk, then renamed.

A reader (the add-on, a resumed engine, a second training run) then sees either the old file or the whole
new one, never half of it. The temporary name `.<name>.<random>.tmp` is what `partial_writes.py` recognises
and removes after a crash. Torch-free: the add-on writes its PC2 caches with it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def atomic_writer(path: Path, mode: int | None = None) -> Iterator[BinaryIO]:
    """A binary handle on a temporary file that replaces `path` when the block ends without an error (the
    temporary file is removed otherwise). `mode` (e.g. 0o600) is set before anything is written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # created 0600
    try:
        if mode is not None and hasattr(os, "fchmod"):  # POSIX; on Windows the file inherits the profile's ACL
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write `data` to `path` atomically (see `atomic_writer`)."""
    with atomic_writer(path, mode) as handle:
        handle.write(data)


def atomic_write_with(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Let `write(handle)` fill the file (torch.save, a zip, a PC2 stream), then rename it into place."""
    with atomic_writer(path) as handle:
        write(handle)
