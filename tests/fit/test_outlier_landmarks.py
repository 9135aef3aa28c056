"""A detection far off the head's path is dropped and the frame tracked from its neighbours (landmarks/outliers.py
in fit/pipeline.py), on the shipped avatar and clip at the `fast` preset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from fit_fixtures import ReplayDetector

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.fit import pipeline
from dlatrack_engine.fit.ground_truth import load_ground_truth_clip
from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, track_video
from dlatrack_engine.metrics.geometry import rotation_angle_deg
from dlatrack_engine.wire.jobfolder import JobFolder

REPO = Path(__file__).resolve().parents[2]
CLIP = REPO / "sample_scenes" / "clips" / "warm_key_cool_fill"
STOP = 16
BAD = 8  # the head at 33° and turning


def failed_detection(points: np.ndarray) -> np.ndarray:
    """What MediaPipe returned on frame 14 of the sample clip `coloured`: the face 20 % too small and 30 px
    (at 256 px) above where it is."""
    centre = points.mean(axis=0)
    return (0.8 * (points - centre) + centre + [0.0, -30.0]).astype(np.float32)


def track(tmp_path: Path, marks: np.ndarray) -> tuple[np.ndarray, JobFolder]:
    torch.manual_seed(0)
    avatar = Avatar.load(REPO / "sample_scenes" / "avatar", "cpu")
    options = TrackOptions(stop=STOP, key_frames=4, write_textures=False, write_overlays=False, write_preview=False)
    detector = ReplayDetector(marks, failing=())
    track_video(CLIP / "frames", avatar, tmp_path, options, runtime=Runtime(landmark_detector=detector))
    truth = load_ground_truth_clip(CLIP, avatar, options.schedule().work_size, list(range(STOP))).truth
    folder = JobFolder(tmp_path)
    tracked = np.stack([folder.read_frame(i)["head_R"] for i in range(STOP)])
    return rotation_angle_deg(tracked, truth.rotation().numpy()), folder


@pytest.fixture(scope="module")
def marks() -> np.ndarray:
    with np.load(CLIP / "gt.npz") as gt:
        points = gt["landmarks_2d"][:STOP].astype(np.float32)
    points[BAD] = failed_detection(points[BAD])
    return points


def test_a_failed_detection_is_dropped_and_its_frame_tracked_from_the_neighbours(tmp_path, marks):
    errors, folder = track(tmp_path / "job", marks)
    assert folder.read_manifest().landmark_dropped_frames == [BAD]
    assert folder.read_manifest().landmark_failed_frames == []
    # Measured 2026-12-07: frame 8 at 0.38°, the 16 frames' mean 0.38°; kept as detected (below): 14.56° on
    # frame 8 (3.59° and 2.27° on its neighbours), mean 2.10°.
    assert errors[BAD] < 1.5 and errors.mean() < 1.0, errors


def test_kept_as_detected_the_same_frame_is_far_off(tmp_path, marks, monkeypatch):
    """The comparison above without the drop: what the failed detection costs when it is believed."""
    monkeypatch.setattr(pipeline, "drop_outliers", lambda track, times: (track, []))
    errors, folder = track(tmp_path / "job", marks)
    assert folder.read_manifest().landmark_dropped_frames is None
    assert errors[BAD] > 8.0, errors
