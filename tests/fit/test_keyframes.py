"""select_key_frames against hand-run farthest-point sampling: the median start, each farthest pick, the
even fill among identical poses, the valid mask's frame numbers and the refusals."""

from __future__ import annotations

import numpy as np
import pytest

from dlatrack_engine.fit.keyframes import select_key_frames


def _on_x(values: list[float]) -> np.ndarray:
    return np.stack([np.asarray(values), np.zeros(len(values)), np.zeros(len(values))], -1)


def test_farthest_point_picks_from_the_median_frame():
    rotations = _on_x([0.0, 1.0, 2.0, 10.0, 3.0])  # median 2 (frame 2), mean 3.2 would start at frame 4
    assert select_key_frames(rotations, 1) == [2]
    assert select_key_frames(rotations, 2) == [2, 3]  # 10 is farthest from 2
    assert select_key_frames(rotations, 3) == [0, 2, 3]  # then 0 (2 from its nearest key)
    assert select_key_frames(rotations, 4) == [0, 1, 2, 3]  # 1 and 3 tie at 1: the first wins
    assert select_key_frames(rotations, 5) == [0, 1, 2, 3, 4]
    assert select_key_frames(rotations, 9) == select_key_frames(rotations, -1) == [0, 1, 2, 3, 4]


def test_distance_is_euclidean_in_all_three_axes():
    rotations = np.array([[0.0, 0.0, 0.0], [0.1, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 3.0], [2.0, 2.0, 0.0]])
    # median (0, 0, 0): frame 0; then (2, 2, 0) at 2.83 loses to (0, 0, 3) at 3, then (2, 2, 0)
    assert select_key_frames(rotations, 2) == [0, 3]
    assert select_key_frames(rotations, 3) == [0, 3, 4]


def test_identical_poses_are_filled_evenly_in_time():
    still = np.tile([[np.pi, 0.1, 0.0]], (10, 1))
    assert select_key_frames(still, 4) == [0, 1, 4, 7]  # frame 0 then every 3rd of the 9 left
    two_poses = _on_x([0.0, 0.0, 0.0, 5.0, 5.0])
    assert select_key_frames(two_poses, 4) == [0, 1, 2, 3]  # 0, 3, then 2 of the rest [1, 2, 4] at step 1.5


def test_the_valid_mask_keeps_frame_numbers_and_bad_input_is_refused():
    rotations = _on_x([7.0, 0.0, 1.0, 2.0, 7.0, 10.0, 3.0])
    valid = np.array([False, True, True, True, False, True, True])
    assert select_key_frames(rotations, 3, valid) == [1, 3, 5]  # frames 1-3, 5, 6 as in the first test
    assert select_key_frames(rotations, 0, valid) == [1, 2, 3, 5, 6]
    assert select_key_frames(rotations.tolist(), 2) == [5, 6]  # lists are accepted; median 3 (frame 6), then 10
    with pytest.raises(ValueError, match=r"^key frames: rotations must be \[N, 3\], got \[7, 2\]$"):
        select_key_frames(rotations[:, :2], 2)
    with pytest.raises(ValueError, match=r"got \[3\]$"):
        select_key_frames(np.zeros(3), 2)
    with pytest.raises(ValueError, match=r"^key frames: no valid frame to choose from \(landmarks failed"):
        select_key_frames(rotations, 2, np.zeros(7, bool))
