"""fit/step1.py in numbers: the depth guess of the PnP start, the fall-back for a frame with too few points,
and Eq. 6's total (landmarks + z prior + temporal prior) as the loop sees it at the start, against a sum
computed here from the loss functions."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics

from dlatrack_engine.fit.losses import acceleration_penalty, landmark_loss
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
    weights = torch.rand(frames, 68, generator=torch.Generator().manual_seed(2))
    return scene, detected, weights, start


@pytest.mark.parametrize("times", [None, torch.tensor([0.0, 2.0, 3.0, 7.0])], ids=["consecutive", "times"])
def test_the_first_loss_is_eq6_plus_both_priors(avatar, times):
    scene, detected, weights, start = _problem(avatar)
    schedule = Schedule(step1=Step1Schedule(iterations=1, lr=1e-9, patience=0, z_prior_weight=0.7,
                                            translation_smoothness=0.2, rotation_smoothness=40.0))
    seen = []
    fit_landmarks(scene, detected, weights, schedule, init=start, times=times, on_iteration=lambda i, v: seen.append(v))
    with torch.no_grad():
        marks = landmark_loss(scene.landmarks_2d(start), detected, weights)
        rot_acc, trans_acc = acceleration_penalty(start.rotation(), start.t * 1000.0, times)
        expected = (marks + 0.7 * start.z.pow(2).sum(-1) + 40.0 * rot_acc + 0.2 * trans_acc).sum()
    assert float(rot_acc.sum()) > 0 and float(trans_acc.sum()) > 0
    assert seen == [pytest.approx(float(expected), rel=1e-4)]
    off = Schedule(step1=Step1Schedule(iterations=1, lr=1e-9, patience=0, z_prior_weight=0.0,
                                       translation_smoothness=0.0, rotation_smoothness=0.0))
    seen.clear()
    fit_landmarks(scene, detected, weights, off, init=start, times=times, on_iteration=lambda i, v: seen.append(v))
    assert seen == [pytest.approx(float(marks.sum()), rel=1e-4)]
    only_rotation = Schedule(step1=Step1Schedule(iterations=1, lr=1e-9, patience=0, z_prior_weight=0.0,
                                                 translation_smoothness=0.0, rotation_smoothness=40.0))
    seen.clear()
    fit_landmarks(scene, detected, weights, only_rotation, init=start, times=times,
                  on_iteration=lambda i, v: seen.append(v))
    assert seen == [pytest.approx(float((marks + 40.0 * rot_acc).sum()), rel=1e-4)]


def test_the_result_and_final_loss_are_at_the_fitted_poses_and_logged(avatar, caplog):
    scene, detected, weights, start = _problem(avatar)
    weights[3] = 0.0  # a frame without points: its mean error divides by 1, not 0
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
