"""Key-frame selection for Algorithm 1: K frames whose initial head rotations r̃ cover their range.

"Sampled uniformly over the range of the initial head rotation" (docs/method.md, step 2): we take the rotations as
points in axis-angle space and pick K by farthest-point sampling, starting from the frame closest to the
median pose. That spreads K frames over the extremes and the middle of the yaw/pitch/roll range (a uniform
grid over a 3-D range would leave most cells empty for a real clip), and is deterministic.
"""

from __future__ import annotations

import numpy as np


def select_key_frames(rotations: np.ndarray, count: int, valid: np.ndarray | None = None) -> list[int]:
    """rotations [N, 3] axis-angle r̃; returns `min(count, N_valid)` sorted frame indices.

    `valid` [N] bool excludes frames (failed detections); `count <= 0` means all frames.
    """
    rotations = np.asarray(rotations, dtype=np.float64)
    if rotations.ndim != 2 or rotations.shape[1] != 3:
        raise ValueError(f"key frames: rotations must be [N, 3], got {list(rotations.shape)}")
    candidates = np.arange(len(rotations)) if valid is None else np.flatnonzero(valid)
    if len(candidates) == 0:
        raise ValueError("key frames: no valid frame to choose from (landmarks failed on every frame?)")
    if count <= 0 or count >= len(candidates):
        return candidates.tolist()
    points = rotations[candidates]
    median = np.median(points, axis=0)
    chosen = [int(np.argmin(np.linalg.norm(points - median, axis=1)))]
    distance = np.linalg.norm(points - points[chosen[0]], axis=1)
    while len(chosen) < count:
        nxt = int(np.argmax(distance))
        if distance[nxt] <= 0.0:  # identical poses left: fill evenly in time
            rest = [i for i in range(len(points)) if i not in set(chosen)]
            step = len(rest) / (count - len(chosen))
            chosen += [rest[int(k * step)] for k in range(count - len(chosen))]
            break
        chosen.append(nxt)
        distance = np.minimum(distance, np.linalg.norm(points - points[nxt], axis=1))
    return sorted(int(candidates[i]) for i in chosen)
