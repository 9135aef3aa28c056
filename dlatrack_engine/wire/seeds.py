"""Seed inputs: the only files a new job folder may already hold.

A job folder is either new (empty), or one the engine wrote (it has the manifest). The one exception is
pre-computed stage results a caller puts there on purpose before the first run: `landmarks.npz` (a
landmark track, e.g. ground truth or from another detector) and `init.npz` (step-1 parameters, shared
between variants of one clip by the benchmarks). They are checked here, field by field, before the job
adopts them into its ledger; anything else in a folder without a manifest is refused.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

NUM_LANDMARKS = 68


class SeedError(ValueError):
    """A seed file that is not what its name says; the message names the file and the field."""


def _arrays(path: Path, data: bytes, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            missing = [key for key in required if key not in npz.files]
            if missing:
                raise SeedError(f"{path}: seed lacks the array(s) {missing} (has {sorted(npz.files)[:10]})")
            return {key: npz[key] for key in required}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if isinstance(exc, SeedError):
            raise
        raise SeedError(f"{path}: not a readable .npz seed ({type(exc).__name__}: {exc})") from exc


def _numeric(path: Path, name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    if array.dtype.kind not in "fiub" or array.ndim != len(shape):
        raise SeedError(f"{path}: '{name}' has dtype {array.dtype} and shape {list(array.shape)}, expected {shape}")
    if any(want is not None and got != want for got, want in zip(array.shape, shape, strict=True)):
        raise SeedError(f"{path}: '{name}' has shape {list(array.shape)}, expected {list(shape)}")
    if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
        raise SeedError(f"{path}: '{name}' holds NaN or infinity")


def check_landmarks(path: Path, data: bytes) -> None:
    arrays = _arrays(path, data, ("points", "confidence", "detected", "detector"))
    n = arrays["points"].shape[0] if arrays["points"].ndim else 0
    _numeric(path, "points", arrays["points"], (None, NUM_LANDMARKS, 2))
    _numeric(path, "confidence", arrays["confidence"], (n, NUM_LANDMARKS))
    _numeric(path, "detected", arrays["detected"], (n,))
    if arrays["detector"].dtype.kind != "U" or arrays["detector"].ndim != 0:
        raise SeedError(f"{path}: 'detector' must be a string, got {arrays['detector'].dtype}")


def check_init(path: Path, data: bytes) -> None:
    arrays = _arrays(path, data, ("r", "t", "z", "loss"))
    n = arrays["r"].shape[0] if arrays["r"].ndim else 0
    _numeric(path, "r", arrays["r"], (None, 3))
    _numeric(path, "t", arrays["t"], (n, 3))
    _numeric(path, "z", arrays["z"], (n, None))
    _numeric(path, "loss", arrays["loss"], (n,))


SEED_FILES = {"landmarks.npz": check_landmarks, "init.npz": check_init}
