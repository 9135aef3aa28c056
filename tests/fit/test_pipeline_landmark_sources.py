"""Where a job's landmarks come from (issue 26): the detector it builds from its options, and the detections it
drops because they are off the head's path in time (landmarks/outliers.py), recorded by frame number in the
manifest and the warning. Jobs of step 1 alone with a few iterations (fit_fixtures.MICRO)."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
from fit_fixtures import MICRO, ReplayDetector, gt_params, write_clip

from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, track_video
from dlatrack_engine.landmarks import LandmarkError, LandmarkTrack
from dlatrack_engine.landmarks.outliers import face_size
from dlatrack_engine.wire.jobfolder import JobFolder

STEP_1 = {"steps": "landmarks", "lighting": "none", "write_preview": False, "write_overlays": False,
          "write_textures": False}


@pytest.fixture(autouse=True)
def micro_schedule(monkeypatch):
    monkeypatch.setattr(TrackOptions, "schedule", lambda self: copy.deepcopy(MICRO))


def test_the_named_detector_is_built_with_the_jobs_weights_folder(tmp_path, avatar, clip_dir):
    """No replay: the job builds face-alignment itself and looks for its weights in the folder it was given
    (here empty, so the job fails saying where it looked)."""
    root, _ = clip_dir
    empty = tmp_path / "weights"
    empty.mkdir()
    options = TrackOptions(**STEP_1, detector="face-alignment", landmark_weights_dir=str(empty))
    with pytest.raises(LandmarkError, match="face-alignment weights not found") as raised:
        track_video(root, avatar, tmp_path / "job", options, lambda event: None)
    assert f"'{empty}'" in str(raised.value)


def test_a_detection_off_the_heads_path_is_dropped_by_frame_number(tmp_path, avatar, caplog):
    """A 7-frame clip from frame 1: the detection of frame 2 (row 1) is moved by the face's size. Rows 0 and 5
    are the ends (never dropped); frame 2's residual is far above the bar max(0.12, 3 x lower quartile) and
    the line carried on from frames 3-4 misses it too, so it is dropped: the manifest and the warning name
    frame 2 (not row 1), and landmarks.npz keeps what the detector said."""
    root = tmp_path / "clip"
    marks = write_clip(root, avatar, gt_params(7))[1:]
    off = marks.copy()
    off[1] += face_size(marks[1:2].astype(np.float64))[0]
    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.landmarks"):
        summary = track_video(root, avatar, tmp_path / "job", TrackOptions(**STEP_1, start=1), lambda event: None,
                              runtime=Runtime(landmark_detector=ReplayDetector(off, failing=())))
    assert summary.frames == 6
    manifest = JobFolder(tmp_path / "job").read_manifest()
    assert manifest.landmark_dropped_frames == [2] and manifest.landmark_failed_frames == []
    warnings = [r.getMessage() for r in caplog.records if "disagree with their neighbours" in r.getMessage()]
    assert warnings == ["landmarks of 1 frame(s) disagree with their neighbours in time and are treated as "
                        "missed (frames 2)"]
    stored = LandmarkTrack.load(str(tmp_path / "job" / "landmarks.npz"))
    assert stored.detected.all() and np.allclose(stored.points, off)
