"""After a crash: remove the temporary files of writes the engine never finished, and nothing else.

Every job-folder file is written as `.<name>.<random>.tmp` next to its final name, then renamed. A killed
engine can leave such files behind; resume removes them. Only names the engine itself would produce, in the
folders it writes, are touched: a user's own `.notes.tmp`, or a temp-looking file in a folder of theirs,
stays. Links are never followed.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

# Names the engine writes, by folder (relative to the job folder).
ENGINE_FILES = {
    "": re.compile(r"^(?:manifest\.json|landmarks\.npz|init\.npz)$"),
    "frames": re.compile(r"^\d{6}\.npz$"),
    "overlay": re.compile(r"^\d{6}\.png$"),
    "lighting": re.compile(r"^(?:light_code\.npy|G\.safetensors|lighting\.json)$"),
    "textures/full": re.compile(r"^\d{6}\.png$"),
    "textures/relit": re.compile(r"^\d{6}\.png$"),
}
_VIEW_TEXTURES = re.compile(r"^textures/view_[A-Za-z0-9_-]+/(?:full|relit)$")
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]+\.tmp$")  # tempfile.mkstemp in atomic.atomic_writer


def _engine_dirs(root: Path) -> list[tuple[Path, re.Pattern[str]]]:
    found = [(root / sub, pattern) for sub, pattern in ENGINE_FILES.items()]
    textures = root / "textures"
    if textures.is_dir() and not textures.is_symlink():
        for view in textures.glob("view_*/*"):
            if _VIEW_TEXTURES.match(view.relative_to(root).as_posix()):
                found.append((view, ENGINE_FILES["textures/full"]))
    return [(d, p) for d, p in found if d.is_dir() and not d.is_symlink()]


def remove_partial_writes(root: Path) -> int:
    """Delete the engine's own temporary files under the job folder `root`; returns how many."""
    count = 0
    for directory, pattern in _engine_dirs(root):
        for entry in os.scandir(directory):
            match = TEMP_NAME.match(entry.name)
            if match and pattern.match(match.group("name")) and entry.is_file(follow_symlinks=False):
                Path(entry.path).unlink(missing_ok=True)
                count += 1
    return count
