"""2-D facial landmarks (iBUG-68) for step 1: face-alignment when its weights are present, MediaPipe
Face Mesh (model shipped in the mediapipe wheel) otherwise, behind one interface."""

from __future__ import annotations

import logging

from dlatrack_engine.landmarks.base import (
    NUM_LANDMARKS,
    LandmarkDetector,
    LandmarkError,
    LandmarkTrack,
    detect_clip,
    interpolate_missing,
)

log = logging.getLogger(__name__)

DETECTORS = ("auto", "face-alignment", "mediapipe")


def create_detector(name: str = "auto", device: str = "cpu", weights_dir: str | None = None) -> LandmarkDetector:
    """Build the named detector; "auto" prefers face-alignment and falls back to MediaPipe with a log line."""
    if name not in DETECTORS:
        raise ValueError(f"unknown landmark detector '{name}': expected one of {DETECTORS}")
    if name in ("auto", "face-alignment"):
        from dlatrack_engine.landmarks.face_alignment_backend import FaceAlignmentDetector

        try:
            return FaceAlignmentDetector(device=device, weights_dir=weights_dir)
        except LandmarkError as exc:
            if name == "face-alignment":
                raise
            log.info("using the MediaPipe fallback: %s", exc)
    from dlatrack_engine.landmarks.mediapipe_backend import MediaPipeDetector

    return MediaPipeDetector()


__all__ = ["DETECTORS", "NUM_LANDMARKS", "LandmarkDetector", "LandmarkError", "LandmarkTrack",
           "create_detector", "detect_clip", "interpolate_missing"]
