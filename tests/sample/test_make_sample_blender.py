"""The whole `make-sample` pipeline through the real Blender subprocess, at a tiny size (issue 3, item 5)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from dlatrack_engine import paths
from dlatrack_engine.lightstage.reader import LightStageDataset
from dlatrack_engine.sample.clips import export_clip

try:
    paths.blender_python()
    HAVE_BLENDER = True
except FileNotFoundError:
    HAVE_BLENDER = False


@pytest.mark.slow
@pytest.mark.blender
@pytest.mark.skipif(not HAVE_BLENDER, reason="no Blender Python (.venv-blender or blender on PATH)")
def test_make_sample_tiny_renders_valid_data(tmp_path):
    from dlatrack_engine.cli import main

    out = tmp_path / "sample"
    assert main(["make-sample", "--preset", "tiny", "--out", str(out)]) == 0, (out / "validation.json").read_text()
    report = json.loads((out / "validation.json").read_text())
    names = {c["name"]: c for c in report["checks"]}
    assert report["passed"] and {"lightstage.mask_iou", "lightstage.group_sum", "clip.dim_side_lamp"} <= set(names)
    assert names["lightstage.mask_iou"]["values"]["min"] >= 0.95

    data = LightStageDataset(out / "lightstage")
    assert [c.name for c in data.cameras] == ["cam00", "cam01"]
    assert [f["kind"] for f in data.frames] == ["full", "group", "full", "group"]
    full, group = data.image(0, "cam00"), data.image(1, "cam00")
    mask = data.mask(0, "cam00")
    assert 0.05 < full[mask].mean() < 2.0, "the fully-lit face is exposed sensibly"
    assert 0 < group[mask].mean() < 0.5 * full[mask].mean(), "a pattern of 2-3 groups carries a fraction of the light"
    code = data.meta(1)["light_code"].reshape(50, 3)
    lit = data.frame_info(1)["groups"]
    assert 2 <= len(lit) <= 3 and code.sum() == 3 * len(lit) and (code[lit] == 1).all(), "code = the lit groups"
    assert data.meta(0)["vertices"].shape == data.topology["neutral"].shape
    texture, weight = data.uv_texture(0, "cam01")
    assert texture.shape == (64, 64, 3) and weight.max() > 0.9

    clip = out / "clips" / "dim_side_lamp"
    gt = np.load(clip / "gt.npz")
    assert gt["vertices"].shape[0] == 2 and gt["landmarks_2d"].shape == (2, 68, 2)
    assert (clip / "video.mp4").stat().st_size > 0
    frame = cv2.imread(str(clip / "frames" / "000000.png"))
    assert frame.shape == (64, 64, 3) and frame.std() > 3
    short = export_clip(clip, tmp_path / "short", frames=1)
    assert json.loads((short / "clip.json").read_text())["frame_count"] == 1
    with np.load(short / "gt.npz") as cut:
        assert cut["vertices"].shape[0] == 1 and cut["K"].shape == (3, 3) and len(cut["expression_names"]) == 12
    sheet = cv2.imread(str(out / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[0] >= 3 * 128, "2 camera rows + the clip row"
