"""Image metrics (L2, PSNR, SSIM on a face region), CSIM, ground-truth geometry errors, the eval table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dlatrack_engine.colour import srgb_to_linear
from dlatrack_engine.metrics import geometry, image
from dlatrack_engine.metrics.cli import format_table


def _img(seed: int, h: int = 48, w: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)


def test_identical_images_are_perfect_and_the_mask_selects_pixels():
    a = _img(0)
    mask = np.zeros((48, 40), np.float32)
    mask[10:30, 5:25] = 1
    assert image.l2_error(a, a, mask) == 0 and image.psnr(a, a, mask) == 100.0
    assert image.ssim(a, a, mask) == pytest.approx(1.0)
    b = a.copy()
    b[0:5] = 0  # outside the mask: no effect
    assert image.l2_error(b, a, mask) == 0


def test_l2_is_mse_in_srgb_255_units_and_psnr_follows():
    grey = np.full((8, 8, 3), 100 / 255, np.float32)
    a = srgb_to_linear(grey)
    b = srgb_to_linear(grey + 10 / 255)
    mask = np.ones((8, 8), np.float32)
    assert image.l2_error(a, b, mask) == pytest.approx(100.0, rel=1e-3)
    assert image.psnr(a, b, mask) == pytest.approx(10 * math.log10(255**2 / 100.0), rel=1e-3)


def test_ssim_drops_with_noise():
    ramp = np.linspace(0.2, 0.6, 40, dtype=np.float32)
    a = np.repeat(np.repeat(ramp[None, :, None], 48, 0), 3, 2)
    noisy = np.clip(a + 0.3 * (_img(2) - 0.5), 0, 1)
    mask = np.ones((48, 40), np.float32)
    assert image.ssim(noisy, a, mask) < 0.9


def test_empty_mask_and_shape_mismatch_are_errors():
    with pytest.raises(ValueError, match="empty"):
        image.l2_error(_img(0), _img(1), np.zeros((48, 40)))
    with pytest.raises(ValueError, match="must both be"):
        image.l2_error(_img(0), _img(1, 40, 40), np.ones((48, 40)))


def test_landmark_hull_covers_the_polygon():
    points = np.array([[10, 10], [30, 10], [30, 40], [10, 40]] * 17, np.float32)
    mask = image.landmark_hull_mask(points, 48, 40)
    assert mask[25, 20] == 1 and mask[5, 5] == 0 and 500 < mask.sum() < 700


def test_geometry_errors_of_a_known_offset():
    n, v = 5, 20
    rng = np.random.default_rng(0)
    gt = {"vertices": rng.normal(0, 0.05, (n, v, 3)), "head_R": np.repeat(np.eye(3)[None], n, 0),
          "head_t": np.tile([0, 0, 0.5], (n, 1)), "K": np.array([[500, 0, 64], [0, 500, 64], [0, 0, 1.0]])}
    track = {k: np.array(gt[k]) for k in ("vertices", "head_R", "head_t")}
    track["head_t"] = track["head_t"] + [0.002, 0, 0]  # 2 mm to the side, every frame
    err = geometry.geometry_errors(track, gt, lambda verts: verts[:, :68 % v])
    assert err["vertex_mm"] == pytest.approx(2.0) and err["translation_mm"] == pytest.approx(2.0)
    assert err["vertex_head_mm"] == pytest.approx(0.0) and err["rotation_deg"] == pytest.approx(0.0, abs=1e-4)
    assert err["jitter_mm"] == pytest.approx(0.0, abs=1e-9)  # a constant offset is not jitter
    assert err["landmark_px"] == pytest.approx(500 * 0.002 / 0.5, rel=0.05)
    track["head_t"][2] += [0.001, 0, 0]  # one frame shakes
    assert geometry.geometry_errors(track, gt)["jitter_mm"] > 0.3


def test_error_split_separates_depth_lateral_and_rigid_error():
    n, v = 4, 50
    rng = np.random.default_rng(1)
    gt_cam = rng.normal(0, 0.05, (n, v, 3)) + np.array([0, 0, 0.6])
    K = np.array([[400, 0, 128], [0, 400, 128], [0, 0, 1.0]])
    farther = geometry.error_split(gt_cam + np.array([0, 0, 0.004]), gt_cam, K)  # 4 mm too far, every frame
    assert farther["depth_bias_mm"] == pytest.approx(4.0) and farther["depth_abs_mm"] == pytest.approx(4.0)
    assert farther["lateral_mm"] == pytest.approx(0.0, abs=1e-9) and farther["aligned_mm"] == pytest.approx(0, abs=1e-9)
    assert 0 < farther["reprojection_px"] < 400 * 0.05 * 0.004 / 0.6 ** 2 * 3  # depth barely moves the image
    alternating = geometry.error_split(gt_cam + np.array([[0, 0, 0.003], [0, 0, -0.003]] * 2)[:, None], gt_cam, K)
    assert alternating["depth_bias_mm"] == pytest.approx(0.0, abs=1e-9)
    assert alternating["depth_abs_mm"] == pytest.approx(3.0)
    angle = np.radians(5.0)  # a rigid rotation about each frame's centroid: rigid-aligned error 0
    rot = np.array([[np.cos(angle), 0, np.sin(angle)], [0, 1, 0], [-np.sin(angle), 0, np.cos(angle)]])
    centre = gt_cam.mean(axis=1, keepdims=True)
    turned = geometry.error_split((gt_cam - centre) @ rot.T + centre, gt_cam, K)
    assert turned["aligned_mm"] == pytest.approx(0.0, abs=1e-9)
    assert turned["depth_bias_mm"] == pytest.approx(0.0, abs=1e-9)
    shape = gt_cam.copy()
    shape[:, 0] += [0.002, 0, 0]  # one vertex moved: not rigid, the aligned error sees it
    assert geometry.error_split(shape, gt_cam)["aligned_mm"] > 0.01


def test_csim_is_one_for_the_same_face_and_lower_for_another_image():
    from dlatrack_engine.metrics import identity  # install.py installs dlib and its packaged models
    a, b = _img(3, 96, 96), _img(4, 96, 96)
    box = (8, 8, 88, 88)
    assert identity.csim(a, a, box) == pytest.approx(1.0, abs=1e-6)
    assert identity.csim(a, b, box) < 0.999
    assert identity.landmark_box(np.array([[10.0, 20.0], [50.0, 60.0]]), 96, 96) == (6, 16, 54, 64)


def test_table_has_the_paper_columns():
    table = format_table([("full", {"l2": 12.5, "ssim": 0.93, "psnr": 37.9, "csim": 0.87}),
                          ("SH", {"l2": 41.0, "ssim": 0.79, "psnr": 32.0})])
    lines = table.splitlines()
    assert lines[0].startswith("| method | L2 ↓ | SSIM ↑ | PSNR ↑ | CSIM ↑ |")
    assert lines[2] == "| full | 12.50 | 0.930 | 37.90 | 0.870 |" and lines[3].endswith("| - |")
