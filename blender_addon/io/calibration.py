"""The video camera's intrinsics, found on the laptop so that they can travel with an uploaded video.

The engine reads a clip's calibration from files beside the video (`clip.json` "K", else `gt.npz` "K":
`dlatrack_engine/fit/camera_setup.py`); an engine on another machine cannot see those files, so the add-on
reads them with the same rules and sends K with the upload. An explicit focal length (`--focal`, the
`focal` option) wins, as on the engine. With none of these the engine assumes a phone-like focal length,
and the user must hear it before the job starts: depth, and so the head's placement, follow from it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .wire.clip_layout import DEFAULT_FOCAL_FACTOR, clip_root


@dataclass(frozen=True)
class Calibration:
    K: list[list[float]] | None  # None: the engine uses `focal` or its default
    source: str  # where it came from, for the log and the job's manifest

    @property
    def assumed(self) -> bool:
        return self.source == "default"

    def warning(self, video: str) -> str:
        return (f"no camera calibration for '{video}' (no clip.json or gt.npz 'K' beside it, no --focal): the "
                f"engine assumes focal = {DEFAULT_FOCAL_FACTOR} x the longer image side, so depth and head "
                "placement may be off; set the focal length to fix it")  # fmt: skip


def _checked(K: Any, where: Path) -> list[list[float]]:
    matrix = np.asarray(K, dtype=np.float64)
    if matrix.shape != (3, 3) or not np.isfinite(matrix).all() or matrix[0, 0] <= 0 or matrix[1, 1] <= 0:
        raise ValueError(f"'{where}': field 'K' must be a 3x3 intrinsic matrix with positive focal, got {K!r}")
    matrix[2] = (0.0, 0.0, 1.0)
    return matrix.tolist()


def find_calibration(video: str | Path, options: Mapping[str, Any]) -> Calibration:
    """K to send with `video` (or None when the `focal` option decides), and where it came from."""
    if options.get("focal") is not None:
        return Calibration(None, "option 'focal'")
    root = clip_root(Path(video))
    meta = root / "clip.json"
    if meta.is_file():
        data = json.loads(meta.read_text(encoding="utf-8"))
        if isinstance(data, dict) and "K" in data:
            return Calibration(_checked(data["K"], meta), str(meta))
    gt = root / "gt.npz"
    if gt.is_file():
        with np.load(gt) as data:
            if "K" in data.files:
                return Calibration(_checked(data["K"], gt), f"{gt} (intrinsics only)")
    return Calibration(None, "default")
