"""Point Cache 2 (.pc2) files: what Blender's Mesh Cache modifier plays back for long clips.

Layout (little-endian): `b"POINTCACHE2\\0"`, int32 version (1), int32 point count, float32 start frame,
float32 sample rate, int32 sample count, then float32 `[samples, points, 3]`. Writing appends samples and
rewrites the count in the header, so a clip can grow frame by frame while the engine tracks it and the
modifier (which re-reads the file on evaluation) always sees a complete file.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np

from .wire.atomic import atomic_writer

MAGIC = b"POINTCACHE2\0"
HEADER = struct.Struct("<12siiffi")
SAMPLES_OFFSET = 12 + 4 + 4 + 4 + 4  # byte offset of the int32 sample count


class PC2Error(ValueError):
    """A .pc2 file that is not what the caller expects (names the file and the field)."""


def write_pc2(
    path: str | os.PathLike[str], frames: np.ndarray, start_frame: float = 1.0, sample_rate: float = 1.0
) -> Path:
    """Write `[N, V, 3]` vertex positions (Blender object frame) to `path` atomically (tmp + rename)."""
    frames = np.ascontiguousarray(frames, dtype="<f4")
    if frames.ndim != 3 or frames.shape[2] != 3:
        raise PC2Error(f"{path}: expected frames [N, V, 3], got shape {frames.shape}")
    path = Path(path)
    with atomic_writer(path) as handle:
        handle.write(HEADER.pack(MAGIC, 1, frames.shape[1], float(start_frame), float(sample_rate), frames.shape[0]))
        frames.tofile(handle)
    return path


def read_header(path: str | os.PathLike[str]) -> dict[str, float | int]:
    """Parse and validate the header; raises PC2Error naming the file and the bad field."""
    with open(path, "rb") as handle:
        raw = handle.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise PC2Error(f"{path}: truncated header ({len(raw)} of {HEADER.size} bytes)")
    magic, version, points, start, rate, samples = HEADER.unpack(raw)
    if magic != MAGIC:
        raise PC2Error(f"{path}: bad magic {magic!r}, expected {MAGIC!r}")
    if version != 1:
        raise PC2Error(f"{path}: version {version}, expected 1")
    expected = HEADER.size + points * samples * 12
    size = os.path.getsize(path)
    if size < expected:
        raise PC2Error(f"{path}: {size} bytes but header says {samples} samples x {points} points ({expected} bytes)")
    return {"points": points, "start_frame": start, "sample_rate": rate, "samples": samples}


def read_pc2(path: str | os.PathLike[str]) -> np.ndarray:
    """All samples as float32 `[N, V, 3]`."""
    header = read_header(path)
    data = np.fromfile(path, dtype="<f4", offset=HEADER.size, count=int(header["samples"]) * int(header["points"]) * 3)
    return data.reshape(int(header["samples"]), int(header["points"]), 3)


def append_pc2(path: str | os.PathLike[str], frames: np.ndarray) -> int:
    """Append `[n, V, 3]` samples to an existing file; returns the new sample count.

    Data goes in first and the header's count last, so a reader never sees a count beyond the data.
    """
    frames = np.ascontiguousarray(frames, dtype="<f4")
    header = read_header(path)
    if frames.ndim != 3 or frames.shape[1:] != (header["points"], 3):
        raise PC2Error(f"{path}: appended frames have shape {frames.shape}, expected [n, {header['points']}, 3]")
    samples = int(header["samples"]) + frames.shape[0]
    with open(path, "r+b") as handle:
        handle.seek(HEADER.size + int(header["samples"]) * int(header["points"]) * 12)
        frames.tofile(handle)
        handle.truncate()
        handle.flush()
        handle.seek(SAMPLES_OFFSET)
        handle.write(struct.pack("<i", samples))
    return samples
