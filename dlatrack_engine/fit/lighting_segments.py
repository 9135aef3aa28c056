"""Where a video's lighting changes (issue 18): cuts, segments and key frames per segment (docs/method.md,
"Lighting that changes during the video").

A light switched on or off, a cut, a cloud over the sun change the face's colour from one frame to the next
by far more than head motion does (a head turning at 30 fps changes the face's mean log colour by about
0.01-0.03 per frame; switching the key light of a two-light room changes it by 0.3-1). A frame t where

    d_t = ‖m_t − m_{t−1}‖,   m_t = log of the mean linear RGB of the face region (the landmark hull)

exceeds both `CUT_LOG_CHANGE` and `CUT_MEDIAN_FACTOR` × the clip's median d starts a new segment.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from dlatrack_engine.fit.keyframes import select_key_frames
from dlatrack_engine.metrics.image import landmark_hull_mask

CUT_LOG_CHANGE = 0.2  # minimum jump of the face's mean log colour (about 22 % in brightness or hue)
CUT_MEDIAN_FACTOR = 5.0  # ... and this many times the clip's typical frame-to-frame change
MIN_KEYS_PER_SEGMENT = 2


def face_colour_stats(frames: np.ndarray, points: np.ndarray) -> np.ndarray:
    """m_t [N, 3]: log mean linear RGB inside the hull of the 2-D landmarks points [N, 68, 2] of frames
    [N, H, W, 3] (both at the same size)."""
    n, height, width = frames.shape[:3]
    if points.shape[0] != n:
        raise ValueError(f"lighting segments: {n} frames but {points.shape[0]} landmark sets")
    stats = np.empty((n, 3))
    for t in range(n):
        mask = landmark_hull_mask(points[t], height, width)
        area = mask.sum()
        region = frames[t].reshape(-1, 3)[mask.reshape(-1) > 0] if area > 16 else frames[t].reshape(-1, 3)
        stats[t] = np.log(np.maximum(region.mean(axis=0), 1e-4))
    return stats


def detect_cuts(stats: np.ndarray, threshold: float = CUT_LOG_CHANGE, factor: float = CUT_MEDIAN_FACTOR) -> list[int]:
    """Frames that start a new lighting segment (sorted, never 0)."""
    if len(stats) < 2:
        return []
    change = np.linalg.norm(np.diff(stats, axis=0), axis=1)
    limit = max(threshold, factor * float(np.median(change)))
    return [int(t) + 1 for t in np.flatnonzero(change > limit)]


def segments_of(n: int, cuts: list[int]) -> list[tuple[int, int]]:
    """[start, stop) row ranges between the cuts."""
    bounds = [0, *sorted(c for c in cuts if 0 < c < n), n]
    return [(a, b) for a, b in pairwise(bounds) if b > a]


def keys_per_segment(rotations: np.ndarray, segments: list[tuple[int, int]], count: int) -> list[int]:
    """Algorithm 1's K key frames spread over the segments in proportion to their length (at least
    MIN_KEYS_PER_SEGMENT each, or all of a shorter one), each segment's by `select_key_frames`: so no key set
    mixes two lightings without a code for each."""
    n = sum(b - a for a, b in segments)
    keys: list[int] = []
    for a, b in segments:
        share = b - a if count <= 0 else max(MIN_KEYS_PER_SEGMENT, round(count * (b - a) / n))
        keys += [a + k for k in select_key_frames(rotations[a:b], min(share, b - a))]
    return sorted(keys)


def segment_of(rows: np.ndarray, segments: list[tuple[int, int]]) -> np.ndarray:
    """The segment number of each row."""
    starts = np.asarray([a for a, _ in segments])
    return np.searchsorted(starts, np.asarray(rows), side="right") - 1
