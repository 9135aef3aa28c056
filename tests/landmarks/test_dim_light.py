"""A second look at a normalised exposure for frames where the detector finds no face (landmarks/exposure.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from dlatrack_engine.colour import linear_to_srgb8, srgb8_to_linear
from dlatrack_engine.landmarks import detect_clip
from dlatrack_engine.landmarks.exposure import MAX_GAIN, TARGET_HIGHLIGHT, exposure_gain, second_looks

DATA = Path(__file__).parent / "data"


def test_gain_brings_highlights_to_the_target_and_never_darkens():
    frame = np.full((10, 10, 3), 0.02, np.float32)
    frame[0, :3] = 0.05  # 3 % of the pixels: the 99th percentile is this highlight
    assert exposure_gain(frame) == pytest.approx(TARGET_HIGHLIGHT / 0.05, rel=1e-5)
    assert exposure_gain(np.full((4, 4, 3), 0.9, np.float32)) == 1.0
    assert exposure_gain(np.zeros((4, 4, 3), np.float32)) == MAX_GAIN


def test_a_bright_frame_gets_only_the_local_contrast_look():
    frame = np.random.default_rng(0).uniform(0.2, 0.9, (16, 16, 3)).astype(np.float32)
    looks = list(second_looks(frame))
    assert len(looks) == 1 and looks[0].dtype == np.uint8 and looks[0].shape == (16, 16, 3)
    dim = frame * 0.05
    brightened, contrasted = second_looks(dim)
    assert np.abs(brightened.astype(int) - linear_to_srgb8(dim * exposure_gain(dim)).astype(int)).max() == 0
    assert brightened.mean() > 3 * linear_to_srgb8(dim).mean()
    assert contrasted.shape == brightened.shape and not np.array_equal(contrasted, brightened)


def test_a_face_in_a_dim_side_lamp_frame_is_found_by_the_second_look():
    """Frame 10 of the sample set-up dim_side_lamp (`dlatrack make-sample --skip-lightstage --clips
    dim_side_lamp --clip-frames 24`): half the face in shadow, MediaPipe finds no face in it as it is."""
    pytest.importorskip("mediapipe")
    from dlatrack_engine.landmarks.mediapipe_backend import MediaPipeDetector

    image = cv2.cvtColor(cv2.imread(str(DATA / "dim_side_lamp_frame10.png")), cv2.COLOR_BGR2RGB)
    truth = np.load(DATA / "dim_side_lamp_frame10.npz")["landmarks_2d"]
    detector = MediaPipeDetector(static=True)
    assert detector.detect(image) is None, "MediaPipe now finds this face as it is: pick a harder frame"
    track = detect_clip(detector, srgb8_to_linear(image)[None], "dim_side_lamp")
    assert track.failed_frames == []
    error = np.linalg.norm(track.points[0] - truth, axis=-1).mean()
    assert error < 8.0, f"found, but {error:.1f} px from the true landmarks"
