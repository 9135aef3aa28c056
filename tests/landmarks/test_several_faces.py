"""Issue 19, class 9: with two faces in view the subject is chosen consistently and the job says so."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from dlatrack_engine.colour import srgb8_to_linear
from dlatrack_engine.landmarks import detect_clip
from dlatrack_engine.paths import REPO_ROOT

FACE = REPO_ROOT / "sample_scenes" / "clips" / "warm_key_cool_fill" / "frames" / "000000.png"


def _face(cx: float, cy: float, size: float) -> tuple[np.ndarray, np.ndarray]:
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    points = np.stack([cx + size / 2 * np.cos(angles), cy + size / 2 * np.sin(angles)], axis=1)
    return points.astype(np.float32), np.ones(68, np.float32)


class TwoPeople:
    """A detector seeing a subject (left, 120 px, still) and a passer-by (right) who walks closer: from frame 3
    on, the passer-by's face is larger. Returned in an order that changes from frame to frame."""

    name = "fake-two-faces"

    def __init__(self) -> None:
        self.frame = 0

    def detect_all(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        faces = [_face(100, 100, 120), _face(300 - 10 * self.frame, 100, 60 + 30 * self.frame)]
        self.frame += 1
        return faces if self.frame % 2 else faces[::-1]

    def detect(self, image: np.ndarray):  # pragma: no cover - detect_all is used
        raise AssertionError("detect_clip must use detect_all when a detector offers it")


def test_the_subject_is_followed_and_the_other_face_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    frames = np.zeros((6, 8, 8, 3), np.float32)
    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.landmarks"):
        track = detect_clip(TwoPeople(), frames, "two.mp4")
    centres = track.points.mean(axis=1)
    np.testing.assert_allclose(centres[:, 0], 100, atol=1e-3)  # the same person in every frame
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'two.mp4': more than one face in 6 of 6 frames" in w for w in warnings), warnings


def test_the_largest_face_is_the_subject_with_mediapipe(caplog: pytest.LogCaptureFixture) -> None:
    """Two real faces (the sample subject at two sizes). Before: MediaPipe's own first face, no warning."""
    pytest.importorskip("mediapipe")
    from dlatrack_engine.landmarks.mediapipe_backend import MediaPipeDetector

    face = cv2.imread(str(FACE))[..., ::-1]
    canvas = np.full((360, 640, 3), 90, np.uint8)
    canvas[80:280, 0:200] = cv2.resize(face, (200, 200), interpolation=cv2.INTER_AREA)
    canvas[55:305, 390:640] = cv2.resize(face, (250, 250), interpolation=cv2.INTER_AREA)
    frames = srgb8_to_linear(np.stack([canvas, canvas]))
    detector = MediaPipeDetector()
    assert len(detector.detect_all(canvas)) == 2
    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.landmarks"):
        track = detect_clip(detector, frames, "pair.png")
    assert track.points[:, :, 0].mean() > 390  # the larger face, on the right, in both frames
    assert any("more than one face in 2 of 2 frames" in r.getMessage() for r in caplog.records)
