"""Against an independent renderer: the sample clip's ground truth (pose, vertices, K; rendered by Cycles
from the generator's scene), written by the add-on and rendered by Blender, covers the clip's masks.

Checks the whole chain of conventions (head frame -> object frame, OpenCV world -> Blender world, K ->
Blender camera) on real data. Uses the committed sample clip.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.paths import SAMPLE_SCENES
from dlatrack_engine.wire.jobfolder import JobFolder
from dlatrack_engine.wire.png import decode_png

pytestmark = pytest.mark.blender
FRAMES = (1, 30, 60)


CLIP = SAMPLE_SCENES / "clips" / "warm_key_cool_fill"  # committed with its masks and ground truth


def test_ground_truth_written_by_the_addon_covers_the_clip_masks(tmp_path: Path) -> None:
    clip = CLIP
    truth = np.load(clip / "gt.npz")
    meta = json.loads((clip / "clip.json").read_text())
    package = tmp_path / "avatar"
    package.mkdir()
    shutil.copy(clip / "topology.npz", package / "topology.npz")
    (package / "avatar.json").write_text(json.dumps({"name": "sample-ground-truth"}))
    count = len(truth["vertices"])
    video = clip / "video.mp4"
    folder = JobFolder.create(tmp_path / "job", "gt", "track", frames=list(range(count)), fps=meta["fps"],
                              size=[meta["width"], meta["height"]], K=truth["K"],
                              video=str(video) if video.is_file() else None)  # fmt: skip
    for i in range(count):
        folder.write_frame(i, {"vertices": truth["vertices"][i], "head_R": truth["head_R"][i],
                               "head_t": truth["head_t"][i], "r": np.zeros(3), "z": np.zeros(1)})  # fmt: skip
    frames = [f for f in FRAMES if f <= count]
    result = run_in_blender(
        SCRIPTS / "check_silhouettes.py",
        {"package": str(package), "job": str(tmp_path / "job"), "frames": frames, "out": str(tmp_path)},
        timeout=180,
    )
    if video.is_file():
        assert result["background"] == ["MOVIE"]
    for frame, path in zip(frames, result["renders"], strict=True):
        rendered = decode_png(Path(path).read_bytes())[..., 3] > 127
        mask = decode_png((clip / "masks" / f"{frame - 1:06d}.png").read_bytes())
        mask = (mask[..., 0] if mask.ndim == 3 else mask) > 127
        iou = (rendered & mask).sum() / (rendered | mask).sum()
        assert iou > 0.95, f"frame {frame}: silhouette IoU {iou:.3f} against {clip.name}'s mask"
