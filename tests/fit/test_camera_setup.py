"""fit/camera_setup.py: where the intrinsics come from, in order (the option, clip.json's K, gt.npz's K, the
phone-like default), and what is refused or warned about."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from dlatrack_engine.fit.camera_setup import DEFAULT_FOCAL_FACTOR, resolve_intrinsics

K_CLIP = [[300.0, 0.0, 60.0], [0.0, 310.0, 40.0], [0.0, 0.0, 1.0]]
K_GT = [[200.0, 0.0, 50.0], [0.0, 210.0, 45.0], [0.0, 0.0, 1.0]]


def _clip(tmp_path, meta: dict | None = None, gt: dict | None = None):
    (tmp_path / "frames").mkdir()
    if meta is not None:
        (tmp_path / "clip.json").write_text(json.dumps(meta))
    if gt is not None:
        np.savez(tmp_path / "gt.npz", **gt)
    return tmp_path / "frames"


def test_an_explicit_focal_wins_over_the_clips_calibration(tmp_path):
    frames = _clip(tmp_path, {"K": K_CLIP})
    K, source = resolve_intrinsics(frames, 120, 80, focal=250.0)
    assert source == "option" and K.dtype == np.float64
    assert K.tolist() == [[250.0, 0.0, 60.0], [0.0, 250.0, 40.0], [0.0, 0.0, 1.0]]
    assert resolve_intrinsics(frames, 120, 80, focal=0.5)[0][0, 0] == 0.5  # tiny but positive
    for bad in (0.0, -5.0):
        with pytest.raises(ValueError, match=rf"^focal length must be positive \(pixels\), got {bad}$"):
            resolve_intrinsics(frames, 120, 80, focal=bad)


def test_clip_json_then_gt_npz_only_for_its_intrinsics(tmp_path):
    frames = _clip(tmp_path, {"K": K_CLIP, "fps": 24}, {"K": np.array(K_GT, np.float32), "head_t": np.zeros((2, 3))})
    K, source = resolve_intrinsics(frames, 120, 80)
    assert K.tolist() == K_CLIP and K.dtype == np.float64 and source == str(tmp_path / "clip.json")
    (tmp_path / "clip.json").write_text(json.dumps({"fps": 24}))  # no K there: gt.npz's
    K, source = resolve_intrinsics(tmp_path, 120, 80)
    assert K.tolist() == K_GT and K.dtype == np.float64 and source == f"{tmp_path / 'gt.npz'} (intrinsics only)"
    assert resolve_intrinsics(tmp_path / "clip.mp4", 120, 80)[0].tolist() == K_GT  # a video file: its folder
    (tmp_path / "clip.json").write_text(json.dumps({"K": [[300, 0, 60], [0, 310, 40], [0, 0, 1]]}))  # integers
    assert resolve_intrinsics(tmp_path, 120, 80)[0].dtype == np.float64


def test_without_calibration_the_default_focal_is_three_quarters_of_the_longer_side(tmp_path, caplog):
    frames = _clip(tmp_path, {"fps": 24}, {"vertices": np.zeros(3)})
    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.fit.camera_setup"):
        K, source = resolve_intrinsics(frames, 120, 80)
    assert DEFAULT_FOCAL_FACTOR == 0.75 and source == "default"
    assert K.tolist() == [[90.0, 0.0, 60.0], [0.0, 90.0, 40.0], [0.0, 0.0, 1.0]]
    assert caplog.messages == [f"no camera calibration for '{frames}': assuming focal 90.0 px (use --focal to set it)"]
    assert resolve_intrinsics(tmp_path / "nowhere", 80, 120)[0][0, 0] == 90.0  # portrait: the height


@pytest.mark.parametrize("K", [
    [[300.0, 0.0, 60.0], [0.0, 310.0, 40.0]],  # not 3 x 3
    [[0.0, 0.0, 60.0], [0.0, 310.0, 40.0], [0.0, 0.0, 1.0]],  # fx = 0
    [[300.0, 0.0, 60.0], [0.0, -1.0, 40.0], [0.0, 0.0, 1.0]],  # fy < 0
    [[300.0, 0.0, 60.0], [0.0, 0.0, 40.0], [0.0, 0.0, 1.0]],  # fy = 0
    [[300.0, 0.0, float("nan")], [0.0, 310.0, 40.0], [0.0, 0.0, 1.0]],  # not finite
], ids=["shape", "fx", "fy", "fy0", "nan"])
def test_a_bad_calibration_is_refused_naming_the_file(tmp_path, K):
    """Any positive focal passes (0.5 px below); zero, negative, non-finite or a wrong shape do not."""
    _clip(tmp_path, {"K": K})
    message = f"'{tmp_path / 'clip.json'}': field 'K' must be a 3x3 intrinsic matrix with positive focal, got "
    with pytest.raises(ValueError) as error:
        resolve_intrinsics(tmp_path, 120, 80)
    assert str(error.value).startswith(message)
    _clip_gt = tmp_path / "gt"
    _clip_gt.mkdir()
    np.savez(_clip_gt / "gt.npz", K=np.array(K) if len(K) == 3 else np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"gt\.npz': field 'K' must be a 3x3"):
        resolve_intrinsics(_clip_gt, 120, 80)


@pytest.mark.parametrize("cx, cy, warned", [(60.0, 40.0, False), (0.0, 40.0, True), (120.0, 40.0, True),
                                            (60.0, 0.0, True), (60.0, 80.0, True), (119.9, 79.9, False),
                                            (0.5, 0.5, False)])
def test_a_principal_point_outside_the_image_is_only_warned_about(tmp_path, caplog, cx, cy, warned):
    _clip(tmp_path, {"K": [[0.5, 0.0, cx], [0.0, 0.5, cy], [0.0, 0.0, 1.0]]})
    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.fit.camera_setup"):
        K, _ = resolve_intrinsics(tmp_path, 120, 80)
    assert (K[0, 2], K[1, 2]) == (cx, cy)
    expected = [f"'{tmp_path / 'clip.json'}': principal point ({cx:.1f}, {cy:.1f}) outside the 120x80 image"]
    assert caplog.messages == (expected if warned else [])
