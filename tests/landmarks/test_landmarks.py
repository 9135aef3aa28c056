"""Landmark interface: face-alignment's missing-weights error, the MediaPipe fallback, failure handling."""

from __future__ import annotations

import glob

import cv2
import numpy as np
import pytest

from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.landmarks import LandmarkError, LandmarkTrack, create_detector, detect_clip, interpolate_missing
from dlatrack_engine.landmarks.face_alignment_backend import REQUIRED_PATTERNS, find_weights
from dlatrack_engine.landmarks.mediapipe_backend import MEDIAPIPE_TO_IBUG68
from dlatrack_engine.paths import REPO_ROOT


@pytest.fixture
def empty_hub(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.delenv("DLATRACK_FACE_ALIGNMENT_DIR", raising=False)
    return tmp_path


def test_face_alignment_without_weights_names_files_and_folders(empty_hub):
    with pytest.raises(LandmarkError) as info:
        create_detector("face-alignment", weights_dir=str(empty_hub / "mine"))
    message = str(info.value)
    for pattern in REQUIRED_PATTERNS:
        assert pattern in message
    assert str(empty_hub / "mine") in message and str(empty_hub / "hub" / "checkpoints") in message
    assert "mediapipe" in message


def test_face_alignment_weights_are_found_in_a_configured_folder(empty_hub, monkeypatch):
    folder = empty_hub / "weights"
    folder.mkdir()
    (folder / "2DFAN4-cd938726ad.zip").write_bytes(b"x")
    with pytest.raises(LandmarkError):
        find_weights()  # only one of the two files so far, and not configured
    (folder / "s3fd-619a316812.pth").write_bytes(b"x")
    monkeypatch.setenv("DLATRACK_FACE_ALIGNMENT_DIR", str(folder))
    assert find_weights() == folder


def test_auto_falls_back_to_mediapipe(empty_hub):
    pytest.importorskip("mediapipe")
    detector = create_detector("auto")
    assert detector.name == "mediapipe-facemesh"
    assert detector.detect(np.zeros((64, 64, 3), np.uint8)) is None  # no face: None, not an exception


def test_mapping_table_is_68_distinct_mesh_points():
    assert MEDIAPIPE_TO_IBUG68.shape == (68,) and len(set(MEDIAPIPE_TO_IBUG68.tolist())) == 68
    assert MEDIAPIPE_TO_IBUG68.min() >= 0 and MEDIAPIPE_TO_IBUG68.max() < 468


class Scripted:
    """Finds a face in frame i unless i is in `fail`. Frame i is recognised by its pixels; any other image
    (a second look at another exposure) has no face. `looks` lists what each call saw (None: another image)."""

    name = "scripted"

    def __init__(self, frames: np.ndarray, fail: set[int]) -> None:
        self.index = {linear_to_srgb8(frame).tobytes(): i for i, frame in enumerate(frames)}
        self.fail, self.looks = fail, []

    def detect(self, image):
        i = self.index.get(image.tobytes())
        self.looks.append(i)
        if i is None or i in self.fail:
            return None
        return np.full((68, 2), float(i), np.float32), np.ones(68, np.float32)


def distinct_frames(n: int) -> np.ndarray:
    """n small dim frames, each of its own grey level (linear 0.01-0.06)."""
    return np.stack([np.full((8, 8, 3), (i + 1) / 100, np.float32) for i in range(n)])


def test_failed_frames_are_flagged_and_interpolated(tmp_path):
    frames = distinct_frames(6)
    detector = Scripted(frames, {0, 2, 3})
    track = detect_clip(detector, frames, "clip.mp4")
    assert track.failed_frames == [0, 2, 3]
    assert track.points[:, 0, 0].tolist() == [1, 1, 2, 3, 4, 5]  # held at the start, linear inside
    assert (track.confidence[[0, 2, 3]] == 0).all()
    # frames found as they are were looked at once; each failed one got two second looks (other exposures)
    assert detector.looks == [0, None, None, 1, 2, None, None, 3, None, None, 4, 5]
    track.save(str(tmp_path / "l.npz"))
    again = LandmarkTrack.load(str(tmp_path / "l.npz"))
    assert np.array_equal(again.points, track.points) and again.detector == "scripted"


def test_no_face_anywhere_names_the_clip():
    frames = distinct_frames(3)
    with pytest.raises(LandmarkError, match=r"'clip\.mp4'.*no face.*3 frames"):
        detect_clip(Scripted(frames, {0, 1, 2}), frames, "clip.mp4")
    with pytest.raises(LandmarkError):
        interpolate_missing(np.zeros((2, 68, 2)), np.zeros(2, bool))


def _sample_frames() -> list[str]:
    found = []
    for root in (REPO_ROOT / "sample_scenes" / "clips", REPO_ROOT / "cache" / "sample" / "clips"):
        found += sorted(glob.glob(str(root / "*" / "frames" / "000000.png")))
    return found


@pytest.mark.skipif(not _sample_frames(), reason="no rendered sample clip (dlatrack make-sample)")
def test_mediapipe_finds_the_synthetic_subject():
    from dlatrack_engine.landmarks.mediapipe_backend import MediaPipeDetector

    path = _sample_frames()[0]
    image = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    result = MediaPipeDetector(static=True).detect(image)
    assert result is not None, f"no face found in {path}"
    points, _ = result
    w = image.shape[1]
    assert (points[:, 0] > 0).all() and (points[:, 0] < w).all() and (points[:, 1] > 0).all()
    assert points[8, 1] > points[30, 1] > points[19, 1]  # chin below nose tip below brow
    assert points[36, 0] < points[45, 0]  # right eye (image left) left of the left eye
