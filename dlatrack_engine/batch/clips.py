"""The clips of a batch: files, clip folders, folders of clips and globs -> clips with unique job names.

A job name must stay the same from one run to the next, because the rerun finds its job folder by it: a
clip's name is its file stem (or folder name); clips whose names collide get a short hash of their path.
"""

from __future__ import annotations

import glob
import hashlib
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dlatrack_engine.video.reader import IMAGE_SUFFIXES

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
GLOB_CHARACTERS = re.compile(r"[*?\[]")


class ClipListError(ValueError):
    """A clip argument that names nothing usable."""


@dataclass(frozen=True)
class Clip:
    path: Path  # absolute
    job: str  # the job folder's name under the batch's output folder


def is_clip_folder(folder: Path) -> bool:
    """What `dlatrack track` reads as one clip: images in the folder or in its `frames/`."""
    frames = folder / "frames" if (folder / "frames").is_dir() else folder
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in frames.iterdir())


def _from_path(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if is_clip_folder(path):
        return [path]
    inner = sorted(p for p in path.iterdir()
                   if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES) or (p.is_dir() and is_clip_folder(p)))
    if not inner:
        raise ClipListError(f"'{path}': folder holds no clip (images, a frames/ folder, videos "
                            f"{'/'.join(VIDEO_SUFFIXES)}, or clip folders)")
    return inner


def expand(arguments: list[str]) -> list[Path]:
    """Absolute clip paths in the order given, each once. A folder is one clip if it holds frames, else the
    videos and clip folders inside it; a pattern with * ? [ is a glob."""
    found: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.exists():
            found += _from_path(path)
        elif GLOB_CHARACTERS.search(argument):
            matches = sorted(glob.glob(argument))
            if not matches:
                raise ClipListError(f"'{argument}': no file or folder matches this pattern")
            for match in matches:
                found += _from_path(Path(match))
        else:
            raise ClipListError(f"'{argument}': no such clip (file or folder)")
    unique = dict.fromkeys(p.resolve() for p in found)
    return list(unique)


def _base_name(path: Path) -> str:
    name = path.stem if path.is_file() else path.name
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "clip"


def name_jobs(paths: list[Path]) -> list[Clip]:
    """One job name per clip: the clip's name, or `name-<6 hex of its path>` where names collide."""
    bases = [_base_name(p) for p in paths]
    counts = Counter(bases)
    return [Clip(p, base if counts[base] == 1 else f"{base}-{hashlib.sha1(str(p).encode()).hexdigest()[:6]}")
            for p, base in zip(paths, bases, strict=True)]
