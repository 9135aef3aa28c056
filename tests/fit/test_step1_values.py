"""fit/step1.py in numbers: the depth guess of the PnP start, the fall-back for a frame with too few points,
and Eq. 6's total (landmarks + z prior + temporal prior) as the loop sees it at the start, against a sum
computed here from the loss functions."""

from __future__ import annotations

import logging
import math
import threading

import numpy as np
import pytest
import torch
from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics

from dlatrack_engine.fit.losses import acceleration_penalty, landmark_loss
from dlatrack_engine.fit.optim import Cancelled
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.schedule import Schedule, Step1Schedule
from dlatrack_engine.fit.step1 import FACING_CAMERA, _depth_guess, fit_landmarks, pnp_init


def test_the_depth_guess_matches_the_landmarks_size_and_centre():
    obj = np.array([[-0.05, -0.05, 0.0], [0.05, 0.05, 0.02], [0.0, 0.0, 0.01]])  # 0.1 m square in x, y
    img = np.array([[35.0, 15.0], [85.0, 65.0], [60.0, 40.0]])  # 50 px square centred on (60, 40)
    K = np.array([[220.0, 0.0, 48.0], [0.0, 200.0, 50.0], [0.0, 0.0, 1.0]])
    guess = _depth_guess(obj, img, K)
    depth = 220.0 * 0.1 / 50.0
    assert guess.shape == (3, 1)
    assert np.allclose(guess[:, 0], [(60 - 48) / 220 * depth, (40 - 50) / 200 * depth, depth])
    single = _depth_guess(obj, np.array([[60.0, 40.0]] * 3), K)  # no extent: depth from a 1e-6 px size
    assert single[2, 0] == pytest.approx(220.0 * math.sqrt(0.02) / 1e-6)


def test_a_frame_with_fewer_than_six_points_starts_facing_the_camera(avatar):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    truth = gt_params(3)
    truth.z.zero_()
    with torch.no_grad():
        detected = scene.landmarks_2d(truth).numpy()
        model = scene.landmarks_3d(torch.zeros(1, 6))[0].numpy()
    weights = np.ones((3, 68))
    weights[1, 5:] = 0.0  # five points left
    weights[2, 6:] = 0.0  # six: enough
    init = pnp_init(model, detected, weights, intrinsics().numpy())
    assert init.r.dtype == torch.float32 and init.z.shape == (0,)
    assert np.allclose(init.r[1].numpy(), FACING_CAMERA) and np.allclose(FACING_CAMERA, [np.pi, 0, 0])
    guess = _depth_guess(model, detected[1], intrinsics().numpy().astype(np.float64))[:, 0]
    assert np.allclose(init.t[1].numpy(), guess, rtol=1e-6)  # from all 68 points
    assert torch.allclose(init.t[[0, 2]], truth.t[[0, 2]], atol=2e-3)


def _problem(avatar, frames: int = 4):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    truth = gt_params(frames)
    with torch.no_grad():
        detected = scene.landmarks_2d(truth) + torch.randn(frames, 68, 2, generator=torch.Generator().manual_seed(1))
    start = FrameParams(truth.r + 0.05, truth.t + 0.01, 0.3 * truth.z)
    start.r[1] += 0.2  # a jerk in rotation and depth, so that small prior weights show
    start.t[1, 2] += 0.01
    weights = 0.1 * torch.rand(frames, 68, generator=torch.Generator().manual_seed(2))
    return scene, detected, weights, start


def _first_loss(scene, detected, weights, start, times, z=0.0, translation=0.0, rotation=0.0, **kwargs) -> float:
    seen = []
    schedule = Schedule(step1=Step1Schedule(iterations=1, lr=1e-9, patience=0, z_prior_weight=z,
                                            translation_smoothness=translation, rotation_smoothness=rotation))
    fit_landmarks(scene, detected, weights, schedule, init=start, times=times, on_iteration=lambda i, v: seen.append(v),
                  **kwargs)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("times", [None, torch.tensor([0.0, 2.0, 3.0, 7.0])], ids=["consecutive", "times"])
def test_the_first_loss_is_eq6_plus_both_priors(avatar, times):
    """The loop's first loss against the terms computed here; each prior weight alone (at 0.2 and 0.9, below 1)
    turns its prior on, and each term is large enough against the landmark sum to be seen at 1e-5."""
    scene, detected, weights, start = _problem(avatar)
    with torch.no_grad():
        marks = landmark_loss(scene.landmarks_2d(start), detected, weights).sum()
        rot_acc, trans_acc = acceleration_penalty(start.rotation(), start.t * 1000.0, times)
        z_term = start.z.pow(2).sum()
    rot_acc, trans_acc = rot_acc.sum(), trans_acc.sum()
    assert min(float(100 * z_term), float(0.9 * rot_acc), float(0.2 * trans_acc)) > 1e-4 * float(marks)
    both = _first_loss(scene, detected, weights, start, times, z=100.0, translation=2.0, rotation=40.0)
    assert both == pytest.approx(float(marks + 100 * z_term + 40 * rot_acc + 2 * trans_acc), rel=1e-5)
    assert _first_loss(scene, detected, weights, start, times) == pytest.approx(float(marks), rel=1e-5)
    only_rotation = _first_loss(scene, detected, weights, start, times, rotation=0.9)
    assert only_rotation == pytest.approx(float(marks + 0.9 * rot_acc), rel=1e-5)
    only_translation = _first_loss(scene, detected, weights, start, times, translation=0.2)
    assert only_translation == pytest.approx(float(marks + 0.2 * trans_acc), rel=1e-5)


def test_the_result_and_final_loss_are_at_the_fitted_poses_and_logged(avatar, caplog):
    scene, detected, weights, start = _problem(avatar)
    weights[3] = 0.0  # a frame without points: its mean error divides by 1, not 0
    weights[2] = 0.0
    weights[2, 0] = 1.0  # one point: divides by its weight 1
    schedule = Schedule(step1=Step1Schedule(iterations=3, lr=0.01, lr_halving=0, patience=0))
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.step1"):
        params, final = fit_landmarks(scene, detected, weights, schedule, init=start)
    assert not params.r.requires_grad and not final.requires_grad and final.shape == (4,)
    assert not torch.allclose(params.r, start.r, atol=1e-4)
    with torch.no_grad():
        expected = landmark_loss(scene.landmarks_2d(params), detected, weights)
    assert torch.allclose(final, expected) and float(final[3]) == 0.0
    error = float((expected / weights.sum(-1).clamp_min(1)).sqrt().mean())
    assert caplog.messages[-1] == f"step 1: 4 frames, 3 iterations, mean landmark error {error:.3g} px"
    early = Schedule(step1=Step1Schedule(iterations=5, lr=1e-9, patience=1, tolerance=1e9))
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.step1"):
        fit_landmarks(scene, detected, weights, early, init=start)  # no fall of 1e9 x the loss: stops at 2
    assert caplog.messages[-1].startswith("step 1: 4 frames, 2 iterations,")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        fit_landmarks(scene, detected, weights, schedule, init=start, cancel=cancel)


def test_without_a_start_the_pnp_solution_from_the_mean_face_is_used(avatar):
    scene, detected, weights, _ = _problem(avatar, 3)
    weights = torch.ones(3, 68)
    schedule = Schedule(step1=Step1Schedule(iterations=0))
    params, _ = fit_landmarks(scene, detected, weights, schedule)
    with torch.no_grad():
        model = scene.landmarks_3d(torch.zeros(1, 6))[0].numpy()
    pnp = pnp_init(model, detected.numpy(), weights.numpy(), intrinsics().numpy())
    assert torch.allclose(params.r, pnp.r, atol=1e-6) and torch.allclose(params.t, pnp.t, atol=1e-6)
    assert torch.equal(params.z, torch.zeros(3, 6))


def test_the_learning_rate_halves_every_lr_halving_iterations(avatar):
    """At a tiny lr the gradient stays put, so each Adam step is the lr itself: lr then lr/2 (halving = 1), or
    lr twice without halving; in scaled units of 0.1 rad."""
    scene, detected, weights, start = _problem(avatar)
    moved = {}
    for halving in (0, 1):
        schedule = Schedule(step1=Step1Schedule(iterations=2, lr=1e-5, lr_halving=halving, patience=0))
        params, _ = fit_landmarks(scene, detected, weights, schedule, init=start)
        moved[halving] = float((params.r - start.r).abs().double().mean() / 0.1)
    assert moved[0] == pytest.approx(2e-5, rel=0.05) and moved[1] == pytest.approx(1.5e-5, rel=0.05)
