"""Ground-truth geometry errors and the paired bootstrap against hand-computed values and independent
computations (scipy's Kabsch, an explicit pinhole projection, numpy's percentile of the same resamples).
Written against the mutants mutmut left alive in metrics/ (bench/RESULTS.md, "Mutation score")."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from dlatrack_engine.metrics import geometry, paired

G = np.array([[0.0, 0.0, 0.0], [0.03, 0.0, 0.01], [0.0, 0.04, -0.01]])  # three head-frame vertices, metres
D = np.array([[0.001, 0.0, 0.0], [0.0, 0.002, 0.0], [0.0, 0.0, 0.003]])  # tracked − true, per vertex: 1, 2, 3 mm
K = np.array([[100.0, 0.0, 50.0], [0.0, 110.0, 40.0], [0.0, 0.0, 1.0]])


def _clip(offsets_mm: list[float], with_k: bool = True) -> tuple[dict, dict]:
    """N frames, no rotation, head 0.5 m away; the track has D in the head frame and a per-frame x offset."""
    n = len(offsets_mm)
    eye = np.repeat(np.eye(3)[None], n, axis=0)
    t_gt = np.tile([0.0, 0.0, 0.5], (n, 1))
    t = t_gt + np.array([[o / 1000.0, 0.0, 0.0] for o in offsets_mm])
    gt = {"vertices": np.repeat(G[None], n, axis=0), "head_R": eye, "head_t": t_gt}
    if with_k:
        gt["K"] = K
    return {"vertices": np.repeat((G + D)[None], n, axis=0), "head_R": eye, "head_t": t}, gt


def test_geometry_errors_of_a_hand_computed_track():
    track, gt = _clip([0.0, 1.0, 0.0, 1.0])
    err = geometry.geometry_errors(track, gt)
    assert err["vertex_head_mm"] == pytest.approx(2.0, rel=1e-9)  # mean of 1, 2, 3 mm
    assert err["translation_mm"] == pytest.approx(0.5, rel=1e-9)
    assert err["rotation_deg"] == pytest.approx(0.0, abs=1e-6)
    # second difference of the x offsets 0, 1, 0, 1 mm: −2, +2 mm at every vertex
    assert err["jitter_mm"] == pytest.approx(2.0, rel=1e-9)
    assert err["depth_bias_mm"] == pytest.approx(1.0, rel=1e-9) and err["depth_abs_mm"] == pytest.approx(1.0)
    # centroid error (1/3, 2/3, 1) mm + the x offset: lateral |(1/3, 2/3)| and |(4/3, 2/3)|
    lateral = (math.hypot(1 / 3, 2 / 3) + math.hypot(4 / 3, 2 / 3)) / 2
    assert err["lateral_mm"] == pytest.approx(lateral, rel=1e-9)
    cam = geometry.to_camera(track["vertices"], track["head_R"], track["head_t"])
    cam_gt = geometry.to_camera(gt["vertices"], gt["head_R"], gt["head_t"])
    assert np.allclose(cam_gt[:, 0], gt["head_t"])  # the head-frame origin lands at t
    residuals = []
    for a, b in zip(cam, cam_gt, strict=True):  # Kabsch by scipy, independently
        a_c, b_c = a - a.mean(0), b - b.mean(0)
        rotation, _ = Rotation.align_vectors(b_c, a_c)
        residuals.append(np.linalg.norm(rotation.apply(a_c) - b_c, axis=-1))
    assert err["aligned_mm"] == pytest.approx(float(np.mean(residuals)) * 1000.0, rel=1e-6)
    pixels = lambda p: np.stack([K[0, 0] * p[..., 0] / p[..., 2] + K[0, 2],  # noqa: E731
                                 K[1, 1] * p[..., 1] / p[..., 2] + K[1, 2]], -1)
    assert err["reprojection_px"] == pytest.approx(float(np.linalg.norm(pixels(cam) - pixels(cam_gt), axis=-1).mean()))


def test_jitter_needs_three_frames_and_k_is_optional():
    three, gt3 = _clip([0.0, 1.0, 0.0])
    assert geometry.geometry_errors(three, gt3)["jitter_mm"] == pytest.approx(2.0, rel=1e-9)
    two, gt2 = _clip([0.0, 1.0], with_k=False)
    err = geometry.geometry_errors(two, gt2)
    assert err["jitter_mm"] == 0.0 and "reprojection_px" not in err
    two_off = {**two, "vertices": two["vertices"] - D + np.array([[0.003, 0, 0], [0.004, 0, 0], [0, 0, 0]])}
    assert geometry.geometry_errors(two_off, gt2)["vertex_head_mm"] == pytest.approx(7.0 / 3.0)  # per vertex
    assert geometry.project_points(np.array([[[0.1, -0.2, 2.0]]]), K).tolist() == [[[55.0, 29.0]]]
    with pytest.raises(ValueError, match=r"differ \(same frames and topology expected\)$"):
        geometry.geometry_errors({**two, "vertices": two["vertices"][:, :2]}, gt2)


def test_rotation_angle_is_the_geodesic_angle_and_survives_rounding():
    sixty = Rotation.from_euler("z", 60, degrees=True).as_matrix()[None]
    assert geometry.rotation_angle_deg(sixty, np.eye(3)[None])[0] == pytest.approx(60.0)
    # trace a hair outside [−1, 3] (rounding of a nearly orthonormal matrix) stays at 0° / 180°, not NaN
    over = np.eye(3)[None] * (1 + 1e-12)
    half_turn = np.diag([-1.0, -1.0, 1.0])[None] * (1 + 1e-12)
    assert geometry.rotation_angle_deg(over, np.eye(3)[None])[0] == pytest.approx(0.0, abs=1e-4)
    assert geometry.rotation_angle_deg(half_turn, np.eye(3)[None])[0] == pytest.approx(180.0)


def test_paired_bootstrap_is_the_seeded_percentile_of_resampled_means():
    rng = np.random.default_rng(4)
    a = rng.normal(1.0, 1.0, 30)
    b = a - rng.normal(0.2, 0.5, 30)
    result = paired.paired_difference(a, b)
    assert result == paired.paired_difference(list(a), list(b), seed=0, resamples=10_000)  # the defaults
    diff = a - b
    picks = np.random.default_rng(0).integers(0, 30, size=(10_000, 30))
    low, high = np.percentile(diff[picks].mean(axis=1), [2.5, 97.5])
    assert (result.low, result.high) == pytest.approx((low, high), rel=1e-12)
    assert result.mean == pytest.approx(diff.mean()) and result.wins == pytest.approx((diff > 0).mean())
    for confidence in (0.0, 1.0):
        with pytest.raises(ValueError, match="confidence must be in"):
            paired.paired_difference(a, b, confidence=confidence)


def test_per_frame_errors_of_a_hand_computed_track():
    track, gt = _clip([0.0, 1.0, 0.0])
    series = geometry.per_frame_errors(track, gt)
    shifted = (2.0 + math.sqrt(5.0) + math.sqrt(10.0)) / 3  # |D_i + (1, 0, 0) mm|
    np.testing.assert_allclose(series["vertex_mm"], [2.0, shifted, 2.0], rtol=1e-9)
    np.testing.assert_allclose(series["depth_mm"], [1.0, 1.0, 1.0], rtol=1e-9)
    sixty = Rotation.from_euler("x", [[0], [60], [0]], degrees=True).as_matrix()
    np.testing.assert_allclose(geometry.per_frame_errors({**track, "head_R": sixty}, gt)["rotation_deg"], [0, 60, 0],
                               atol=1e-6)
