"""Step 2 (Algorithm 1) lowers the key-frame loss; step 3 (Eq. 7 + 8) beats step 1 against ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics, render_clip

from dlatrack_engine.fit.image_term import image_term
from dlatrack_engine.fit.keyframes import select_key_frames
from dlatrack_engine.fit.lighting import VideoLighting
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.schedule import Schedule, Step1Schedule, Step2Schedule, Step3Schedule
from dlatrack_engine.fit.step1 import fit_landmarks
from dlatrack_engine.fit.step2 import adapt_lighting
from dlatrack_engine.fit.step3 import track_batch
from dlatrack_engine.metrics.geometry import geometry_errors

SCHEDULE = Schedule(
    step1=Step1Schedule(iterations=150, lr=0.1, lr_halving=75, patience=0),
    step2=Step2Schedule(key_frames=4, rounds=2, light_iterations=25, light_lr=5e-2, model_iterations=25,
                        model_lr=1e-3, batch_size=4),
    step3=Step3Schedule(iterations=40, lr=0.05, lr_halving=20, patience=0, batch_size=6),
    dis_preset="medium",
)


def _setup(avatar, frames_count: int = 6, noise: float = 1.5):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    truth = gt_params(frames_count)
    frames, _ = render_clip(avatar, truth)
    with torch.no_grad():
        clean = scene.landmarks_2d(truth)
    detected = clean + noise * torch.randn(clean.shape, generator=torch.Generator().manual_seed(11))
    init, _ = fit_landmarks(scene, detected, torch.ones(frames_count, 68), SCHEDULE)
    return scene, truth, frames, init


def _track_dict(scene: FaceScene, params: FrameParams) -> dict:
    with torch.no_grad():
        vertices = scene.geometry(params.z)
    return {"vertices": vertices.numpy(), "head_R": params.rotation().numpy(), "head_t": params.t.numpy()}


@pytest.fixture(scope="module")
def adapted(avatar):
    """Step 1 + step 2 once for both tests: (scene, truth, frames, init, lighting, before, after, history)."""
    scene, truth, frames, init = _setup(avatar)
    keys = select_key_frames(init.r.numpy(), 4)
    lighting = VideoLighting("G", avatar)
    key_params = init.select(keys)
    with torch.no_grad():
        before = image_term(scene, frames[keys], key_params, lighting, SCHEDULE.laplacian_weight)[0].sum()
    refined, history = adapt_lighting(scene, frames[keys], key_params, lighting, SCHEDULE)
    with torch.no_grad():
        after = image_term(scene, frames[keys], refined, lighting, SCHEDULE.laplacian_weight)[0].sum()
    return scene, truth, frames, init, lighting, float(before), float(after), history


def test_step2_lowers_the_pixel_loss_on_key_frames(avatar, adapted):
    _, _, _, _, lighting, before, after, history = adapted
    assert after < 0.6 * before
    assert history[-1] < history[0]
    assert lighting.code.abs().sum() > 0  # l moved from zeros
    assert not torch.equal(next(lighting.network.parameters()), next(avatar.lighting.parameters()))


def test_step3_beats_step1_against_ground_truth(adapted):
    scene, truth, frames, init, lighting, *_ = adapted
    losses: list[float] = []
    tracked, terms = track_batch(scene, frames, init, lighting, SCHEDULE, on_iteration=lambda i, v: losses.append(v))
    assert losses[-1] < losses[0]
    gt = {"vertices": _track_dict(scene, truth)["vertices"], "head_R": truth.rotation().numpy(),
          "head_t": truth.t.numpy(), "K": intrinsics().numpy()}
    err1 = geometry_errors(_track_dict(scene, init), gt)
    err3 = geometry_errors(_track_dict(scene, tracked), gt)
    assert err3["vertex_mm"] < 0.8 * err1["vertex_mm"], (err1, err3)
    assert np.isfinite(terms.flow.numpy()).all() and (terms.flow >= 0).all()


def test_sh_lighting_starts_at_identity_and_adapts(avatar, adapted):
    scene, _, frames, init, *_ = adapted
    lighting = VideoLighting("SH", avatar, scene.renderer)
    keys = [0, 5]
    with torch.no_grad():
        plain = scene.render(init.select(keys), None).image
        lit = scene.render(init.select(keys), lighting).image
        before = image_term(scene, frames[keys], init.select(keys), lighting, 0.25)[0].sum()
    assert torch.allclose(plain, lit, atol=1e-5)  # identity coefficients: gain 1 where the texture is seen
    fast = Schedule(step2=Step2Schedule(key_frames=2, rounds=1, light_iterations=15, light_lr=5e-2,
                                        model_iterations=0, batch_size=2))
    adapt_lighting(scene, frames[keys], init.select(keys), lighting, fast)
    with torch.no_grad():
        after = image_term(scene, frames[keys], init.select(keys), lighting, 0.25)[0].sum()
    assert float(after) < float(before)
