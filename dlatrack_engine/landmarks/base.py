"""The landmark interface every detector implements, and the per-clip result with failure handling.

A detector maps one 8-bit sRGB frame to 68 iBUG-ordered 2-D points in pixels (conventions.md: u right,
v down, the image's top-left corner at (0, 0)) or None when it finds no face. `detect_clip` runs it over
a clip, looks a second time at frames without a face at a normalised exposure (`exposure.py`), flags the
frames that still fail and fills them by linear interpolation in time (nearest detection at the ends),
because one missed frame must not stop a track.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.landmarks.exposure import second_looks
from dlatrack_engine.landmarks.subject import SubjectPicker
from dlatrack_engine.wire.atomic import atomic_write_bytes

log = logging.getLogger(__name__)
NUM_LANDMARKS = 68


class LandmarkError(RuntimeError):
    """Landmarks could not be produced (no model, or no face in any frame); the message says which."""


class LandmarkDetector(Protocol):
    name: str

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """image [H, W, 3] uint8 sRGB -> (points [68, 2] float32 pixels, confidence [68] float32) or None.

        A detector may also offer `detect_all(image) -> list[(points, confidence)]`, every face it finds;
        `detect_clip` then chooses the subject itself (`subject.py`)."""
        ...


def _candidates(detector: LandmarkDetector, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    detect_all = getattr(detector, "detect_all", None)
    if detect_all is not None:
        return list(detect_all(image))
    result = detector.detect(image)
    return [] if result is None else [result]


def _faces_in(detector: LandmarkDetector, frame_linear: np.ndarray) -> tuple[list, bool]:
    """(candidates, whether only a second look at a normalised exposure found them)."""
    found = _candidates(detector, linear_to_srgb8(frame_linear))
    if found:
        return found, False
    for view in second_looks(frame_linear):
        found = _candidates(detector, view)
        if found:
            return found, True
    return [], False


@dataclass
class LandmarkTrack:
    """Landmarks of every frame of a clip.

    points [N, 68, 2] pixels; confidence [N, 68] in [0, 1] (0 where interpolated); detected [N] bool.
    """

    points: np.ndarray
    confidence: np.ndarray
    detected: np.ndarray
    detector: str

    @property
    def failed_frames(self) -> list[int]:
        return np.flatnonzero(~self.detected).tolist()

    def save(self, path: str) -> None:
        atomic_write_bytes(Path(path), self.to_bytes())

    def to_bytes(self) -> bytes:
        """The .npz file's bytes (the pipeline writes them through the job folder's recorded writes)."""
        buffer = io.BytesIO()
        np.savez(buffer, **self._arrays())
        return buffer.getvalue()

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"points": self.points, "confidence": self.confidence, "detected": self.detected,
                "detector": np.array(self.detector)}

    @classmethod
    def load(cls, path: str) -> LandmarkTrack:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["points"], data["confidence"], data["detected"].astype(bool), str(data["detector"]))


def interpolate_missing(points: np.ndarray, detected: np.ndarray) -> np.ndarray:
    """Fill frames where `detected` is False by linear interpolation between the nearest detected frames."""
    good = np.flatnonzero(detected)
    if len(good) == 0:
        raise LandmarkError("no face was detected in any frame, nothing to interpolate from")
    frames = np.arange(len(points))
    flat = points.reshape(len(points), -1)
    filled = np.stack([np.interp(frames, good, flat[good, k]) for k in range(flat.shape[1])], axis=1)
    return filled.reshape(points.shape).astype(np.float32)


def detect_clip(detector: LandmarkDetector, frames_linear: Iterable[np.ndarray], source: str = "clip",
                progress: Callable[[int, int], None] | None = None, count: int | None = None) -> LandmarkTrack:
    """Run `detector` on frames [N, H, W, 3] linear RGB, or on `count` frames from an iterator (a clip
    streamed from disk one frame at a time); failed frames are flagged and interpolated."""
    n = len(frames_linear) if count is None else count  # type: ignore[arg-type]
    points = np.zeros((n, NUM_LANDMARKS, 2), np.float32)
    confidence = np.zeros((n, NUM_LANDMARKS), np.float32)
    detected = np.zeros(n, bool)
    seen = 0
    subject = SubjectPicker()
    second_looked = 0
    for i, frame in zip(range(n), frames_linear, strict=False):
        faces, second_look = _faces_in(detector, np.asarray(frame, np.float32))
        second_looked += second_look
        result = subject.pick(i, faces)
        if result is not None:
            points[i], confidence[i] = result
            detected[i] = True
        seen = i + 1
        if progress is not None:
            progress(seen, n)
    if seen != n:
        raise LandmarkError(f"'{source}': only {seen} of {n} frames could be read for landmarks (file changed?)")
    if not detected.any():
        raise LandmarkError(f"'{source}': detector '{detector.name}' found no face in any of its {n} frames")
    if second_looked:
        log.info("'%s': %d frames had a face only at a normalised exposure (second look)", source, second_looked)
    several = subject.warning(source, n)
    if several:
        log.warning("%s", several)
    failed = np.flatnonzero(~detected).tolist()
    if failed:
        listed = ", ".join(map(str, failed[:20])) + (" ..." if len(failed) > 20 else "")
        log.warning("'%s': no face found by '%s' in %d of %d frames (%s); interpolated", source,
                    detector.name, len(failed), n, listed)
        points = interpolate_missing(points, detected)
    return LandmarkTrack(points, confidence, detected, detector.name)
