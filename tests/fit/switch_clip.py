"""A tiny clip whose light drops to 30 % at a known frame (issue 18), tracked with the pipeline tests' schedule:
shared by the engine's test (tests/fit/test_lighting_switch.py) and Blender's render test
(tests/blender/test_blender_lighting_switch.py)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
from fit_fixtures import TINY, ReplayDetector, gt_params, write_clip

from dlatrack_engine.colour import linear_to_srgb8, srgb8_to_linear
from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, track_video

N, SWITCH, DIM = 8, 4, 0.3
SCHEDULE = dataclasses.replace(TINY, step2=dataclasses.replace(TINY.step2, light_iterations=30))


def write_switch_clip(root: Path, avatar) -> np.ndarray:
    """The fixtures' N-frame clip of `avatar` under `root`, its light dimmed to DIM from frame SWITCH on
    (linear RGB scaled, as a key switched off); -> the replayed landmarks."""
    marks = write_clip(root, avatar, gt_params(N, 3))
    for i in range(SWITCH, N):
        path = str(root / "frames" / f"{i:06d}.png")
        linear = srgb8_to_linear(cv2.imread(path)[..., ::-1]) * DIM
        cv2.imwrite(path, cv2.cvtColor(linear_to_srgb8(linear), cv2.COLOR_RGB2BGR))
    return marks


def track(video: Path, avatar, out: Path, marks: np.ndarray, **extra) -> None:
    """Track `video` with the default options but the tiny SCHEDULE, replayed landmarks `marks` and the
    options a test varies (`extra`; K = 4 unless `key_frames` is given)."""
    options = TrackOptions(**{"key_frames": 4, "write_preview": False, "write_overlays": False, **extra})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrackOptions, "schedule", lambda self: SCHEDULE)
        track_video(video, avatar, out, options, runtime=Runtime(landmark_detector=ReplayDetector(marks)))
