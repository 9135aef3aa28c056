"""Content hashes that both sides of the wire compute the same way (uploads identify files by them, job
folders the request that filled them)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks so a video of any size hashes in constant memory."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def request_digest(request: Mapping[str, Any], length: int = 16) -> str:
    """The one recipe for naming a request by what it asks (SHA-1 of its sorted JSON, `length` hex digits):
    the pipeline's fingerprint of a job folder's request, the add-on's job folder names."""
    text = json.dumps(dict(request), sort_keys=True)
    return hashlib.sha1(text.encode()).hexdigest()[:length]
