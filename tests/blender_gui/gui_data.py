"""Data for the GUI tests, made in the engine venv: a small dome avatar, a clip of it, and seeded job folders.

The dome (tests/fit/fit_fixtures) has no face a landmark detector could find, so each job folder that the
sidebar's Track Video will use starts with the ground-truth landmark track in `landmarks.npz` — the file the
engine's pipeline writes after detection and reuses on resume. Everything after that (steps 1-3, frame
files, textures) is computed by the real engine while Blender's UI runs.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from blender_addon.io.options import job_folder_name, track_options
from dlatrack_engine.paths import REPO_ROOT

CLIP_FRAMES = 200  # 10 engine write batches (20 frames each): a job killed after the first has most to come
DISTINCT_FRAMES = 12  # rendered ones; the clip cycles through them (rendering costs ~1 s a frame on 2 cores)
KEY_FRAMES = 1


def make_dome_clip(root: Path, requests: Sequence[tuple]) -> dict[str, str]:
    """Avatar package (`root/dome`), a CLIP_FRAMES-frame clip (PNG folder `root/clip/frames`) and, under
    `root/jobs/`, the job folder of each (start, count, preset[, extra options]) request as the add-on names
    it, seeded with that range's landmarks."""
    import cv2
    import torch

    sys.path.insert(0, str(REPO_ROOT / "tests" / "fit"))
    from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics, make_avatar, render_clip

    from dlatrack_engine.colour import linear_to_srgb8
    from dlatrack_engine.fit.scene import FaceScene
    from dlatrack_engine.landmarks import LandmarkTrack

    avatar = make_avatar()
    package = avatar.to_package(root / "dome", provenance={"command": "tests/blender_gui"})
    truth = gt_params(DISTINCT_FRAMES)
    frames, _ = render_clip(avatar, truth)
    cycle = np.arange(CLIP_FRAMES) % DISTINCT_FRAMES
    video = root / "clip" / "frames"
    video.mkdir(parents=True)
    for i, frame in enumerate(frames.numpy()[cycle]):
        cv2.imwrite(str(video / f"{i:06d}.png"), cv2.cvtColor(linear_to_srgb8(frame), cv2.COLOR_RGB2BGR))
    (video.parent / "clip.json").write_text(json.dumps({"name": "dome", "fps": 24, "width": WIDTH, "height": HEIGHT}))
    np.savez(video.parent / "gt.npz", K=intrinsics().numpy())
    with torch.no_grad():
        marks = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT).landmarks_2d(truth).numpy()[cycle]
    jobs = root / "jobs"
    for start, count, preset, *extra in requests:
        options = {**track_options(start, count, KEY_FRAMES, preset), **(extra[0] if extra else {})}
        folder = jobs / job_folder_name(str(video), str(package), options)
        folder.mkdir(parents=True)
        rows = slice(start, start + count)
        LandmarkTrack(marks[rows], np.ones(marks[rows].shape[:2], np.float32), np.ones(count, bool),
                      "ground-truth").save(str(folder / "landmarks.npz"))  # fmt: skip
    return {"package": str(package), "video": str(video), "jobs": str(jobs)}
