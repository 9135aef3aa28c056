"""What the sidebar says about a finished job, read from its folder: the PSNR of the relit avatar against the
video, the frames where tracking lost the face, and the side-by-side `preview.mp4` (engine: report/preview.py).

The engine records these in the manifest's `metrics.preview` when it writes the preview; `dlatrack eval`'s
PSNR (`metrics.eval`) is the same number on the same frames, used when there is no preview.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .wire.jobfolder import JobFolder, JobFolderError


@dataclass(frozen=True)
class JobSummary:
    psnr: float | None  # dB, face region, mean over the tracked frames
    lost_frames: tuple[int, ...]  # source frame indices without a detected face
    preview: Path | None  # preview.mp4 when it exists on this machine
    first_frame: int  # source index of the first tracked frame (the scene shows frame i at i + 1)

    @classmethod
    def from_folder(cls, root: str | os.PathLike[str]) -> JobSummary | None:
        """None when `root` holds no readable job manifest (no job yet, or a remote engine's folder)."""
        folder = JobFolder(root)
        try:
            manifest = folder.read_manifest()
        except (OSError, JobFolderError, ValueError):
            return None
        metrics = manifest.metrics
        preview = metrics.get("preview") or {}
        psnr = preview.get("psnr", (metrics.get("eval") or {}).get("psnr"))
        lost = preview.get("lost_frames", manifest.landmark_failed_frames or [])
        path = folder.root / str(preview.get("file", "preview.mp4"))
        frames = manifest.frames or [0]
        return cls(None if psnr is None else float(psnr), tuple(int(i) for i in lost),
                   path if path.is_file() else None, int(frames[0]))


_cache: dict[str, tuple[float, JobSummary | None]] = {}


def cached_summary(root: str) -> JobSummary | None:
    """`JobSummary.from_folder`, re-read only when the manifest changes (the sidebar draws many times a second)."""
    try:
        stamp = os.stat(JobFolder(root).manifest_path).st_mtime
    except OSError:
        return None
    hit = _cache.get(root)
    if hit is None or hit[0] != stamp:
        hit = _cache[root] = (stamp, JobSummary.from_folder(root))
    return hit[1]
