"""What one frame file (`frames/<i:06d>.npz`) holds: a tracked frame's arrays, float32, plus loss terms.

The job folder writes and reads these bytes; the fields are docs/conventions.md "Job folder"'s. Torch-free.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping

import numpy as np

from .manifest import JobFolderError

TRACK_FRAME_FIELDS = {"vertices": 2, "head_R": 2, "head_t": 1, "r": 1, "z": 1}  # field -> ndim


def encode_frame(data: Mapping[str, np.ndarray]) -> bytes:
    """The npz bytes, floating-point arrays as float32 (the conventions' type)."""
    arrays = {key: value.astype(np.float32) if value.dtype.kind == "f" else value for key, value in data.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def decode_frame(data: bytes, where: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in npz.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise JobFolderError(f"{where}: unreadable npz ({type(exc).__name__}: {exc})") from exc


def check_track_frame(data: Mapping[str, np.ndarray], where: str) -> None:
    """A track frame holds vertices [V,3], head_R [3,3], head_t [3], r [3], z [Z], all numeric."""
    for key, ndim in TRACK_FRAME_FIELDS.items():
        if key not in data:
            raise JobFolderError(f"{where}: field '{key}' missing (a track frame needs {sorted(TRACK_FRAME_FIELDS)})")
        if data[key].ndim != ndim or not np.issubdtype(data[key].dtype, np.number):
            raise JobFolderError(f"{where}: field '{key}' has shape {data[key].shape}, expected {ndim} dimensions")
    expected = {"head_R": (3, 3), "head_t": (3,), "r": (3,)}
    for key, shape in expected.items():
        if data[key].shape != shape:
            raise JobFolderError(f"{where}: field '{key}' has shape {data[key].shape}, expected {shape}")
    if data["vertices"].shape[1] != 3:
        raise JobFolderError(f"{where}: field 'vertices' has shape {data['vertices'].shape}, expected [V, 3]")
