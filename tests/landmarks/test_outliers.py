"""Detections off the line through their neighbours in time are dropped like missed frames (landmarks/outliers.py).

`data/mediapipe_turns.npz`: MediaPipe 0.10.14's iBUG-68 points (`*_detected`) and the true projections of the
subject's landmarks (`*_truth`, from gt.npz) on the first 24 frames of four sample clips, as rendered by
`dlatrack make-sample --skip-lightstage --clip-frames 24` and detected by `dlatrack track` (landmarks.npz). The
head turns ±40° in each; on `coloured` MediaPipe put frame 14 32 px off, 20 % too small.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlatrack_engine.landmarks import LandmarkTrack
from dlatrack_engine.landmarks.outliers import (
    MAX_DISTANCE,
    OUTLIER_RESIDUAL,
    drop_outliers,
    face_size,
    temporal_residuals,
)

DATA = np.load(Path(__file__).parent / "data" / "mediapipe_turns.npz")
CLEAN_CLIPS = ("screen_dark_room", "sun_sky", "warm_key_cool_fill")


def track_of(points: np.ndarray, detected: np.ndarray | None = None) -> LandmarkTrack:
    n = len(points)
    detected = np.ones(n, bool) if detected is None else detected
    return LandmarkTrack(points.astype(np.float32), np.ones((n, 68), np.float32), detected, "mediapipe-facemesh")


def moving_face(n: int = 12) -> np.ndarray:
    """A unit-circle 'face' of 68 points moving at constant velocity (a straight line in time)."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    face = 40.0 * np.stack([np.cos(angles), np.sin(angles)], -1) + 128.0
    return face[None] + np.arange(n)[:, None, None] * np.array([3.0, -1.0])


def test_face_size_is_the_rms_radius():
    assert face_size(moving_face(1))[0] == pytest.approx(40.0)


def test_uniform_motion_has_zero_residual_and_a_shift_its_relative_distance():
    points = moving_face()
    between, best = temporal_residuals(points, np.ones(len(points), bool))
    assert np.isnan(between[0]) and np.isnan(between[-1])  # no neighbour on one side
    assert best[0] == pytest.approx(0.0, abs=1e-12)  # but the line carried back from frames 1 and 2
    assert np.allclose(between[1:-1], 0.0, atol=1e-12)
    points[5] += [8.0, 6.0]  # 10 px off a face of RMS radius 40
    between, best = temporal_residuals(points, np.ones(len(points), bool))
    assert between[5] == pytest.approx(0.25)
    assert best[5] == pytest.approx(0.25 / 2)  # carried on from 3, 4 (or 6, 7): d1 · d2 = 1 · 2
    assert between[4] == pytest.approx(0.125) and between[6] == pytest.approx(0.125)  # half the shift
    assert best[4] == pytest.approx(0.0, abs=1e-12)  # its line from frames 2, 3 does not pass through 5


def test_an_accelerating_head_misses_every_line_by_the_same_residual():
    """x(t) = a t² / 2: every line through two frames misses by (a / 2) · d1 · d2, so divided by d1 · d2 the
    residual is a / 2 (over the face size) whichever pair predicts."""
    points = moving_face(8)
    points += (0.5 * 4.0 * np.arange(8.0) ** 2)[:, None, None] * np.array([1.0, 0.0])  # a = 4 px / frame²
    detected = np.ones(8, bool)
    detected[4] = False  # frame 5's neighbours are 3 and 6
    between, best = temporal_residuals(points, detected)
    assert between[5] == pytest.approx(2.0 / 40.0) and best[5] == pytest.approx(2.0 / 40.0)
    assert between[2] == pytest.approx(2.0 / 40.0)
    detected[[1, 2, 6]] = False  # frame 3: neighbours 0 and 5, 3 frames before: beyond MAX_DISTANCE = 3? no, at it
    between, _ = temporal_residuals(points, detected)
    assert MAX_DISTANCE == 3 and between[3] == pytest.approx(2.0 / 40.0)
    detected[0] = False  # 3 has no detection before it: no line between; 5, 7 are beyond MAX_REACH
    between, best = temporal_residuals(points, detected)
    assert np.isnan(between[3]) and np.isnan(best[3])


def test_frame_times_place_the_line():
    points = moving_face(3)
    times = np.array([0.0, 1.0, 3.0])  # a strided selection: frame 1 is a third of the way, not half
    points[2] = points[0] + 3 * (points[1] - points[0])
    assert np.allclose(temporal_residuals(points, np.ones(3, bool), times)[0][1], 0.0, atol=1e-12)
    assert temporal_residuals(points, np.ones(3, bool))[0][1] > 0.02


def test_one_bad_frame_is_dropped_alone_and_filled_from_its_neighbours():
    points = moving_face()
    points[6] = 0.8 * (points[6] - points[6].mean(0)) + points[6].mean(0) + [0.0, -30.0]
    track, dropped = drop_outliers(track_of(points))
    assert dropped == [6]
    assert track.detected.tolist() == [i != 6 for i in range(12)]
    assert track.confidence[6].max() == 0.0 and track.confidence[5].min() == 1.0
    assert np.allclose(track.points[6], moving_face()[6], atol=1e-4)  # the line through frames 5 and 7
    assert np.array_equal(track.points[5], points[5].astype(np.float32))


def test_two_adjacent_bad_frames_are_both_dropped_and_their_neighbours_kept():
    points = moving_face()
    points[[6, 7]] += np.array([25.0, 0.0])  # the detector locked on the same wrong place twice
    _, dropped = drop_outliers(track_of(points))
    assert sorted(dropped) == [6, 7]


def test_motion_fast_for_the_frame_rate_raises_the_bar():
    """A face circling 12 px around a point every 6 frames (a head shaken fast for the frame rate): every line
    misses by 0.15 > 0.12, none is an outlier. The bar is then 3x the clip's lower quartile, and a detection far
    above that is still dropped."""
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    face = 40.0 * np.stack([np.cos(angles), np.sin(angles)], -1)
    phase = 2 * np.pi * np.arange(12) / 6.0
    points = 128.0 + face[None] + 12.0 * np.stack([np.cos(phase), np.sin(phase)], -1)[:, None]
    between, _ = temporal_residuals(points, np.ones(12, bool))
    assert np.allclose(between[1:-1], 0.15)  # 12 px · (1 − cos 60°) over a radius of 40
    assert drop_outliers(track_of(points))[1] == []
    points[5] += [0.0, 60.0]  # 1.5 face radii off, against a bar of 3 · 0.15
    assert drop_outliers(track_of(points))[1] == [5]


def test_nothing_to_drop_returns_the_same_track():
    track = track_of(moving_face())
    assert drop_outliers(track) == (track, [])


@pytest.mark.parametrize("clip", CLEAN_CLIPS)
def test_real_detections_of_turning_heads_are_kept(clip):
    """MediaPipe on three ±40° turns within 7 px of the truth: a fast turn is not an outlier."""
    points = DATA[f"{clip}_detected"]
    between, _ = temporal_residuals(points, np.ones(len(points), bool))
    assert np.nanmax(between) < 0.65 * OUTLIER_RESIDUAL  # 0.02-0.07: margin to the threshold
    assert drop_outliers(track_of(points))[1] == []


def test_real_detector_failure_is_dropped_and_the_track_gets_closer_to_the_truth():
    points, truth = DATA["coloured_detected"], DATA["coloured_truth"]
    before = np.linalg.norm(points - truth, axis=-1).mean(-1)
    track, dropped = drop_outliers(track_of(points))
    after = np.linalg.norm(track.points - truth, axis=-1).mean(-1)
    assert dropped[0] == 14 and before[14] > 30.0  # the worst first
    assert after[14] < 10.0
    assert after[dropped].mean() < 0.6 * before[dropped].mean()
    assert set(dropped) <= set(range(13, 21))  # the frames of the failed turn, nothing else
    assert after.mean() < before.mean() - 0.5
