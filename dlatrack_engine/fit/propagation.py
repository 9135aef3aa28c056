"""Poses for the frames the landmark detector missed: the head's motion bridged across each gap.

Step 1 has no data where no face was found. Its pose there follows landmarks interpolated linearly between
the detections around the gap, which is wrong whenever the head does not move uniformly during the gap, and a
head turning into the dark is exactly when detection fails: on the sample clip `dim_side_lamp` the head turns
42° out and back over eight undetected frames while the interpolated landmarks keep it within 12° of where it
started. Started there, 20-29° off, step 3 stays there.

So a gap's frames take a cubic Hermite curve in time through the rotations at the gap's two ends (of the
detected frames next to it), with the head's angular velocity there as the tangents (the rotation from the
detected frame past an end to the end; the gap's mean rate where that frame was not detected). A head that turns
out and back during the gap follows that curve. A gap at the start or end of the clip has one end: its frames
carry on the velocity there. The translation stays step 1's (the interpolated landmarks still hold the head's
position and size roughly, while a translation carried on at the end's velocity drifted along the viewing ray);
z is the nearer end's. The pipeline bridges step 1's poses before step 2 (Algorithm 1's key frames inside a gap
would otherwise be adapted to at the interpolated poses), and step 3's starts, step 2's refined poses, again;
the gap's frames are then tracked in step 3's batches with the others. A departure from the paper, measured in
bench/RESULTS.md ("frames without landmarks").
"""

from __future__ import annotations

import numpy as np
import torch

from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.geometry import axis_angle_to_matrix, matrix_to_axis_angle


def gaps(detected: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) row of each run of undetected frames, in time order."""
    runs: list[tuple[int, int]] = []
    for r in np.flatnonzero(~np.asarray(detected, dtype=bool)).tolist():
        if runs and runs[-1][1] == r - 1:
            runs[-1] = (runs[-1][0], r)
        else:
            runs.append((r, r))
    return runs


def end_rows(gap: tuple[int, int], detected: np.ndarray) -> list[int]:
    """The detected rows a gap's starts are made from: each end next to it and the frame past that end."""
    first, last = gap
    return [r for r in (first - 2, first - 1, last + 1, last + 2) if 0 <= r < len(detected) and detected[r]]


def gap_rotations(gap: tuple[int, int], known: dict[int, torch.Tensor]) -> torch.Tensor:
    """Rotations [last - first + 1, 3, 3] for a gap's rows from the `known` rotations [3, 3] of (some of) the
    rows `end_rows` names; at least one end (first - 1 or last + 1) must be known."""
    first, last = gap
    a, b = first - 1, last + 1
    rows = torch.arange(first, last + 1, dtype=torch.float64)
    if a not in known and b not in known:
        raise ValueError(f"propagation: the gap {first}-{last} has no known end")
    if b not in known:  # the clip's end: carry on the velocity at a
        return _turn(_velocity(known, a - 1, a), rows - a, known[a])
    if a not in known:  # the clip's start: carry the velocity at b backwards
        return _turn(_velocity(known, b + 1, b), b - rows, known[b])
    span = float(b - a)
    end = _log(known[b] @ known[a].transpose(-1, -2))  # b relative to a, in a's tangent space
    start_rate = _velocity(known, a - 1, a, default=end / span)
    end_rate = _velocity(known, b, b + 1, default=end / span)
    s = ((rows - a) / span)[:, None]
    h10, h01, h11 = s**3 - 2 * s**2 + s, -2 * s**3 + 3 * s**2, s**3 - s**2
    curve = h10 * span * start_rate + h01 * end + h11 * span * end_rate  # cubic Hermite, 0 at a
    return axis_angle_to_matrix(curve.to(known[a].dtype)) @ known[a]


def bridge_gaps(starts: FrameParams, detected: np.ndarray) -> FrameParams:
    """Per-frame poses [N] (step 1's, or step 3's starts) with every gap's rows replaced: `gap_rotations`
    through the poses of the detected rows at its ends, the nearer end's z (the earlier on a tie), the
    translation kept. Without a gap, `starts` itself."""
    detected = np.asarray(detected, dtype=bool)
    if not detected.any():
        raise ValueError("propagation: no detected frame to start from")
    runs = gaps(detected)
    if not runs:
        return starts
    bridged = starts.detach()
    rotations = starts.rotation().detach()
    for first, last in runs:
        known = {r: rotations[r] for r in end_rows((first, last), detected)}
        bridged.r[first:last + 1] = matrix_to_axis_angle(gap_rotations((first, last), known))
        ends = [e for e in (first - 1, last + 1) if e in known]
        nearer = [min(ends, key=lambda e, row=row: (abs(e - row), e)) for row in range(first, last + 1)]
        bridged.z[first:last + 1] = starts.z[nearer].detach()
    return bridged


def _velocity(known: dict[int, torch.Tensor], before: int, after: int,
              default: torch.Tensor | None = None) -> torch.Tensor:
    """The rotation from row `before` to the adjacent row `after` as an axis-angle vector [3] (float64);
    `default` (else no motion) where either is not known."""
    if before in known and after in known:
        return _log(known[after] @ known[before].transpose(-1, -2))
    return default if default is not None else torch.zeros(3, dtype=torch.float64)


def _log(rotation: torch.Tensor) -> torch.Tensor:
    return matrix_to_axis_angle(rotation[None].double())[0]


def _turn(velocity: torch.Tensor, steps: torch.Tensor, rotation: torch.Tensor) -> torch.Tensor:
    """`rotation` turned on by `velocity` (per frame) for each of `steps` frames -> [S, 3, 3]."""
    return axis_angle_to_matrix((steps[:, None] * velocity).to(rotation.dtype)) @ rotation
