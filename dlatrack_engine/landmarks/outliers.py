"""Detections that disagree with their neighbours in time are treated as missed frames.

A landmark detector can return a confident face that is badly wrong: on the sample clip `coloured`, MediaPipe
put frame 14 of a head turning away 32 px from the truth, shifted and 20 % too small, while frames 13 and 15
were 8-10 px off. Step 1 fits such a frame as it is (a head 19 cm too far, 33° off), and its temporal prior
spreads the error to the neighbours. A head moves smoothly between frames, so each detection is compared with
straight lines in time through nearby detections: the median distance of its 68 points from a line, relative
to the face's size. A frame is dropped when it is far from the line between its neighbours and also from the
lines carried on from two detections on either side (a good frame next to a bad one keeps the line on its good
side). Dropped frames are flagged as not detected and filled like missed ones, so the pipeline bridges them
(`fit/propagation.py`); the worst goes first and the residuals are recomputed after each drop, so one bad
frame does not condemn its neighbours. Where fast motion raises every frame's residual, the bar rises with the
clip's lower quartile.
"""

from __future__ import annotations

import logging

import numpy as np

from dlatrack_engine.landmarks.base import LandmarkTrack, interpolate_missing

log = logging.getLogger(__name__)

# The residual (median point distance from the nearest prediction, over the face's RMS radius, per frame² of
# support) of the sample clips' good detections is 0.02-0.10, that of the bad ones 0.15-0.78 (bench/RESULTS.md,
# "detections that disagree with their neighbours").
OUTLIER_RESIDUAL = 0.12
# Motion that is fast for the frame rate (or small, noisy faces) raises every frame's residual: a frame must also
# be this many times the clip's lower quartile, the residual that most of its good frames stay under.
QUARTILE_FACTOR = 3.0
MAX_DISTANCE = 3  # frames from a detection to the detections that predict it, between them
MAX_REACH = 2  # ... and carried on from one side: a line carried farther says too little about the frame


def face_size(points: np.ndarray) -> np.ndarray:
    """RMS distance of each frame's points from their centroid, [N, 68, 2] -> [N] (pixels)."""
    centred = points - points.mean(axis=-2, keepdims=True)
    return np.sqrt((centred**2).sum(-1).mean(-1))


def _line_residual(points: np.ndarray, times: np.ndarray, i: int, a: int, b: int, reach: int = MAX_DISTANCE,
                   ) -> float:
    """Distance of frame i from the line in time through frames a and b, as a fraction of the face's size, over
    d1 · d2 (its time distances to a and b): for a head that accelerates uniformly any such line misses by
    (acceleration / 2) · d1 · d2, so the residual of smooth motion does not depend on which pair predicts.
    NaN where a or b is more than `reach` frames away."""
    d1, d2 = abs(times[i] - times[a]), abs(times[i] - times[b])
    if max(d1, d2) > reach:
        return float("nan")
    w = (times[i] - times[a]) / (times[b] - times[a])
    line = (1.0 - w) * points[a] + w * points[b]
    return float(np.median(np.linalg.norm(points[i] - line, axis=-1)) / face_size(line[None])[0] / (d1 * d2))


def temporal_residuals(points: np.ndarray, detected: np.ndarray, times: np.ndarray | None = None,
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Per detected frame: (the residual from the line through its nearest detections on either side, the
    smallest residual over that line and the lines carried on from the two nearest detections before or after).
    The first ranks the frames; the second spares a good frame next to a bad one, which spoils only the lines
    through it. NaN where no line is within reach (the clip's ends have no first residual)."""
    n = len(points)
    times = np.arange(n, dtype=np.float64) if times is None else np.asarray(times, np.float64)
    good = np.flatnonzero(detected)
    between, best = np.full(n, np.nan), np.full(n, np.nan)
    for j, i in enumerate(good):
        pairs = [(good[j - 2], good[j - 1])] if j >= 2 else []
        pairs += [(good[j + 1], good[j + 2])] if j + 2 < len(good) else []
        if 0 < j < len(good) - 1:
            between[i] = _line_residual(points, times, i, good[j - 1], good[j + 1])
        values = [between[i], *(_line_residual(points, times, i, a, b, MAX_REACH) for a, b in pairs)]
        if not np.all(np.isnan(values)):
            best[i] = np.nanmin(values)
    return between, best


def drop_outliers(track: LandmarkTrack, times: np.ndarray | None = None,
                  threshold: float = OUTLIER_RESIDUAL) -> tuple[LandmarkTrack, list[int]]:
    """`track` with the frames whose detection is off the line through its neighbours flagged as not detected
    and filled like missed frames; -> (track, the dropped rows, in the order dropped). The first and last
    detections have no line between neighbours, so they are never dropped and every frame can be filled."""
    points = track.points.astype(np.float64)
    detected = track.detected.copy()
    times = np.arange(len(points), dtype=np.float64) if times is None else np.asarray(times, np.float64)
    between, best = temporal_residuals(points, detected, times)
    if not np.all(np.isnan(between)):
        threshold = max(threshold, QUARTILE_FACTOR * float(np.nanpercentile(between, 25)))
    dropped: list[int] = []
    while True:
        candidates = np.where((between > threshold) & (best > threshold), between, np.nan)
        if np.all(np.isnan(candidates)):
            break
        worst = int(np.nanargmax(candidates))
        detected[worst] = False
        dropped.append(worst)
        between, best = temporal_residuals(points, detected, times)
    if not dropped:
        return track, []
    log.warning("landmarks of %d frame(s) disagree with their neighbours in time and are treated as missed (frames %s)",
                len(dropped), ", ".join(str(int(times[i])) for i in sorted(dropped)))
    confidence = track.confidence.copy()
    confidence[dropped] = 0.0
    filled = interpolate_missing(track.points, detected)
    return LandmarkTrack(filled, confidence, detected, track.detector), dropped
