"""fit/lighting_segments.py in numbers: the cut rule's two limits and its strict comparison, segments from
unsorted or out-of-range cuts, Algorithm 1's K shared in proportion over the segments, and the face colour
statistic's fall-backs (a hull of at most 16 pixels, a black face)."""

from __future__ import annotations

import numpy as np
import pytest

from dlatrack_engine.fit.keyframes import select_key_frames
from dlatrack_engine.fit.lighting_segments import (
    CUT_LOG_CHANGE,
    CUT_MEDIAN_FACTOR,
    MIN_KEYS_PER_SEGMENT,
    detect_cuts,
    face_colour_stats,
    keys_per_segment,
    segment_of,
    segments_of,
)


def _steps(changes: list[float]) -> np.ndarray:
    """Stats [len + 1, 3] whose frame-to-frame change has norm `changes[t]` (along one channel)."""
    stats = np.zeros((len(changes) + 1, 3))
    stats[1:, 0] = np.cumsum(changes)
    return stats


def test_the_documented_limits():
    assert (CUT_LOG_CHANGE, CUT_MEDIAN_FACTOR, MIN_KEYS_PER_SEGMENT) == (0.2, 5.0, 2)


def test_a_cut_must_exceed_the_absolute_limit_strictly():
    assert detect_cuts(_steps([0.0, 0.0, 0.2, 0.0])) == []  # exactly 0.2: no cut
    assert detect_cuts(_steps([0.0, 0.0, 0.2001, 0.0])) == [3]  # the frame after the jump starts the segment
    assert detect_cuts(_steps([0.0, 0.0, 0.0, 0.25, 0.0, 0.0, -0.3, 0.0])) == [4, 7]  # either sign, every jump
    assert detect_cuts(_steps([0.0, 0.0, 0.3, 0.0]), threshold=0.35) == []
    assert detect_cuts(np.zeros((1, 3))) == [] and detect_cuts(np.zeros((0, 3))) == []
    # two frames: their one change is the median, so only a factor below 1 can cut them
    assert detect_cuts(_steps([0.5]), factor=0.5) == [1] and detect_cuts(_steps([0.5])) == []


def test_a_cut_must_exceed_five_times_the_median_change_strictly():
    # median change 0.125 -> limit 0.625 (binary fractions: exact); 0.625 itself is not a cut, 0.6875 is
    assert detect_cuts(_steps([0.125, 0.125, 0.625, 0.125, 0.125])) == []
    assert detect_cuts(_steps([0.125, 0.125, 0.6875, 0.125, 0.125])) == [3]
    assert detect_cuts(_steps([0.125, 0.125, 0.6875, 0.125, 0.125]), factor=6.0) == []
    # the change is a Euclidean norm over the three channels: 0.15 in each is 0.26 > 0.2, 0.1 is 0.17
    stats = np.zeros((6, 3))
    stats[3:] = 0.15
    assert detect_cuts(stats) == [3]
    assert detect_cuts(stats * 0.1 / 0.15) == []


def test_segments_from_cuts_in_any_order_and_out_of_range():
    assert segments_of(10, [7, 3]) == [(0, 3), (3, 7), (7, 10)]
    assert segments_of(10, [0, 10, 12, -1]) == [(0, 10)]
    assert segments_of(10, []) == [(0, 10)]
    assert segments_of(5, [2, 2]) == [(0, 2), (2, 5)]  # a repeated cut gives no empty segment
    assert segments_of(5, [1, 4]) == [(0, 1), (1, 4), (4, 5)]  # one-frame segments at either end
    assert segments_of(0, []) == []


def test_the_segment_number_of_each_row():
    segments = [(0, 3), (3, 7), (7, 10)]
    assert segment_of(np.arange(10), segments).tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert segment_of([7, 2], segments).tolist() == [2, 0]


def test_key_frames_are_shared_in_proportion_with_at_least_two_each():
    rotations = np.random.default_rng(4).normal(0, 0.3, (30, 3))
    segments = [(0, 10), (10, 30)]
    keys = keys_per_segment(rotations, segments, 6)  # 6 x 10/30 = 2 and 6 x 20/30 = 4
    second = [10 + k for k in select_key_frames(rotations[10:], 4)]
    assert keys == sorted([*select_key_frames(rotations[:10], 2), *second])
    keys = keys_per_segment(rotations, [(0, 3), (3, 30)], 9)  # 9 x 3/30 = 0.9 -> 1, raised to 2
    assert sum(k < 3 for k in keys) == 2 and sum(k >= 3 for k in keys) == 8
    keys = keys_per_segment(rotations, [(0, 1), (1, 30)], 12)  # a 1-frame segment gives its only frame
    assert keys[0] == 0 and sum(k >= 1 for k in keys) == 12
    keys = keys_per_segment(rotations, [(0, 15), (15, 30)], 7)  # 3.5 rounds to 4 (half to even), 4
    assert len(keys) == 8
    assert len(keys_per_segment(rotations, segments, 1)) == 4  # K = 1: still two per segment
    assert keys_per_segment(rotations, segments, 0) == list(range(30))  # K <= 0: every frame
    assert keys_per_segment(rotations, segments, -1) == list(range(30))


def test_face_colour_is_the_log_mean_inside_the_hull_or_of_the_whole_frame():
    frames = np.full((3, 20, 20, 3), 0.2, np.float32)
    frames[:, 5:10, 5:10] = [0.8, 0.4, 0.1]
    frames[2] = 0.0  # black: the log is floored at 1e-4
    # pixel centres at i + 0.5: corners 5.5 and 9.5 hold pixels 5-9, 25 > 16; 5.5 and 8.5 hold 16, too few
    big = np.array([[5.5, 5.5], [9.5, 5.5], [9.5, 9.5], [5.5, 9.5]], np.float32)
    small = np.array([[5.5, 5.5], [8.5, 5.5], [8.5, 8.5], [5.5, 8.5]], np.float32)
    points = np.stack([np.tile(big, (17, 1)), np.tile(small, (17, 1)), np.tile(big, (17, 1))])
    stats = face_colour_stats(frames, points)
    assert np.allclose(stats[0], np.log([0.8, 0.4, 0.1]), atol=1e-6)
    whole = (25 * np.array([0.8, 0.4, 0.1]) + 375 * 0.2) / 400
    assert np.allclose(stats[1], np.log(whole), atol=1e-6)
    assert np.allclose(stats[2], np.log(1e-4))
    line = np.full((1, 20, 30, 3), 0.2, np.float32)
    line[0, 5, 5:22] = 0.6  # a hull of 17 pixels in one row: enough
    corners = np.array([[5.5, 5.5], [21.5, 5.5]], np.float32)
    assert np.allclose(face_colour_stats(line, np.tile(corners, (34, 1))[None]), np.log(0.6), atol=1e-6)
    with pytest.raises(ValueError, match=r"^lighting segments: 3 frames but 2 landmark sets$"):
        face_colour_stats(frames, points[:2])
