"""Intrinsics of the video camera for registration.

Order: an explicit focal length (pixels, principal point at the centre); the clip's calibration when the
clip folder carries one (`clip.json` "K", else `gt.npz` "K" - only the intrinsics are read from it, never
the motion); otherwise a phone-like default, f = 0.75 x the longer side (about 67° across it, a 26 mm
equivalent lens), which a user can override with `--focal`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from dlatrack_engine.wire.clip_layout import DEFAULT_FOCAL_FACTOR, clip_root

log = logging.getLogger(__name__)
__all__ = ["DEFAULT_FOCAL_FACTOR", "resolve_intrinsics"]


def resolve_intrinsics(video: str | Path, width: int, height: int,
                       focal: float | None = None) -> tuple[np.ndarray, str]:
    """-> (K [3, 3] float64, where it came from)."""
    if focal is not None:
        if focal <= 0:
            raise ValueError(f"focal length must be positive (pixels), got {focal}")
        return np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]]), "option"
    root = clip_root(Path(video))
    meta = root / "clip.json"
    if meta.exists():
        data = json.loads(meta.read_text())
        if "K" in data:
            return _checked(np.asarray(data["K"], np.float64), meta, width, height), str(meta)
    gt = root / "gt.npz"
    if gt.exists():
        with np.load(gt) as data:
            if "K" in data.files:
                return _checked(np.asarray(data["K"], np.float64), gt, width, height), f"{gt} (intrinsics only)"
    f = DEFAULT_FOCAL_FACTOR * max(width, height)
    log.warning("no camera calibration for '%s': assuming focal %.1f px (use --focal to set it)", video, f)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1.0]]), "default"


def _checked(K: np.ndarray, where: Path, width: int, height: int) -> np.ndarray:
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"'{where}': field 'K' must be a 3x3 intrinsic matrix with positive focal, got {K.tolist()}")
    if not (0 < K[0, 2] < width and 0 < K[1, 2] < height):
        log.warning("'%s': principal point (%.1f, %.1f) outside the %dx%d image", where, K[0, 2], K[1, 2],
                    width, height)
    return K
