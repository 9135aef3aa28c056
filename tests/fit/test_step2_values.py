"""fit/step2.py in numbers: the mini-batches and round splits, the key-frame loss (the fixed-geometry fast path
equals the full render; the batch sum scaled to K), and what Algorithm 1 and the reuse refinement fit, in which
order, and leave trainable. Tiny: 3 key frames at 48 px, 1-2 iterations per half-round."""

from __future__ import annotations

import logging
import threading

import pytest
import torch
from fit_fixtures import SMALL_SIDE, responsive_avatar, small_clip

from dlatrack_engine.fit.image_term import image_term
from dlatrack_engine.fit.optim import Cancelled
from dlatrack_engine.fit.params import FrameParams, ScaledParams
from dlatrack_engine.fit.schedule import Schedule, Step2Schedule
from dlatrack_engine.fit.step2 import (
    _batches,
    _KeyFrameLoss,
    _split,
    adapt_lighting,
    pose_iterations,
    refine_iterations,
    refine_key_poses,
)
from dlatrack_engine.fit.video_lighting import VideoLighting

SIDE = SMALL_SIDE


@pytest.fixture(scope="module")
def problem(avatar):
    scene, frames, truth = small_clip(avatar, 3)
    start = FrameParams(truth.r + 0.02, truth.t + torch.tensor([0.003, 0.0, 0.008]), truth.z)
    return scene, frames, start


def _schedule(**step2) -> Schedule:
    base = dict(key_frames=3, rounds=2, light_iterations=1, light_lr=0.05, model_iterations=1, model_lr=1e-3,
                pose_lr_scale=20.0, batch_size=2)
    return Schedule(step2=Step2Schedule(**{**base, **step2}), laplacian_weight=0.3)


def test_batches_and_round_splits():
    assert _batches(5, 2) == [[0, 1], [2, 3], [4]]
    assert _batches(2, 5) == [[0, 1]] and _batches(3, 0) == [[0], [1], [2]] and _batches(0, 4) == []
    assert _split(10, 3) == [4, 3, 3] and _split(5, 0) == [5] and _split(2, 4) == [1, 1, 0, 0]
    s = _schedule(rounds=3, model_iterations=7, light_iterations=5)
    assert pose_iterations(s) == 21 and refine_iterations(s) == 15 + 21
    s.step2.reuse_pose_iterations = 4
    assert pose_iterations(s) == 4 and refine_iterations(s) == 15 + 4


def test_the_key_frame_loss_cycles_batches_and_scales_to_k(problem, avatar):
    scene, frames, start = problem
    lighting = VideoLighting("G", avatar)
    leaves = ScaledParams(start, 0.1, 0.01)
    matte = torch.ones(3, SIDE, SIDE, 1)
    matte[:, : SIDE // 2] = 0.0
    loss = _KeyFrameLoss(scene, frames, leaves, lighting, _schedule(), matte=matte)
    with torch.no_grad():
        per_frame, _ = image_term(scene, frames, start, lighting, 0.3, matte)
        values = [float(loss()) for _ in range(3)]  # batches [0, 1], [2], [0, 1]
    assert loss.calls == 3
    assert values[0] == pytest.approx(float(per_frame[:2].sum()) * 3 / 2, rel=1e-5)
    assert values[1] == pytest.approx(float(per_frame[2]) * 3, rel=1e-5)
    assert values[2] == pytest.approx(values[0], rel=1e-6)
    loss.fix_geometry()  # the fast path: decoded and rasterised once, G re-run; the next batch is [2]
    with torch.no_grad():
        fixed = [float(loss()) for _ in range(2)]
    # equal up to the pixels of fractional coverage inside the weight (3e-4 of the loss here), where the
    # full render antialiases against its neighbours and the fast path blends with the frame
    assert fixed == [pytest.approx(values[1], rel=1e-3), pytest.approx(values[0], rel=1e-3)]
    loss.free_geometry()
    assert loss.fixed is None


def test_each_key_frame_is_lit_by_its_row_of_a_sequence_lighting(problem):
    scene, frames, start = problem
    lighting = VideoLighting("G", responsive_avatar(), frames=5)  # a G that l drives
    with torch.no_grad():
        lighting.offsets.normal_()
    leaves = ScaledParams(start, 0.1, 0.01)
    loss = _KeyFrameLoss(scene, frames, leaves, lighting, _schedule(batch_size=3), rows=[4, 0, 2])
    with torch.no_grad():
        per_frame, _ = image_term(scene, frames, start, lighting.at([4, 0, 2]), 0.3)
        wrong, _ = image_term(scene, frames, start, lighting.at([0, 1, 2]), 0.3)
        assert float(loss()) == pytest.approx(float(per_frame.sum()), rel=1e-5)
    assert abs(float(wrong.sum()) - float(per_frame.sum())) > 1e-3


def test_algorithm_1_fits_l_then_phi_and_poses_and_freezes_them_after(problem, avatar):
    scene, frames, start = problem
    lighting = VideoLighting("G", avatar)
    phi = [p.detach().clone() for p in lighting.network_parameters()]
    stages = []
    refined, history = adapt_lighting(scene, frames, start, lighting, _schedule(),
                                      on_iteration=lambda stage, it, value: stages.append((stage, it)))
    assert stages == [("adapt l 1/2", 1), ("adapt φ,p 1/2", 1), ("adapt l 2/2", 1), ("adapt φ,p 2/2", 1)]
    assert len(history) == 4 and all(h > 0 for h in history)
    assert float(lighting.code.abs().max()) > 0 and not lighting.code.requires_grad
    assert any(not torch.equal(a, b) for a, b in zip(phi, lighting.network_parameters(), strict=True))
    assert not any(p.requires_grad for p in lighting.network_parameters())
    assert not torch.allclose(refined.r, start.r, atol=1e-5) and not refined.r.requires_grad


def test_without_adaptation_only_l_is_fitted_and_zero_pose_scale_keeps_step_1(problem, avatar):
    scene, frames, start = problem
    lighting = VideoLighting("G", avatar)
    phi = [p.detach().clone() for p in lighting.network_parameters()]
    refined, history = adapt_lighting(scene, frames, start, lighting, _schedule(), adapt_network=False)
    assert len(history) == 2 and float(lighting.code.abs().max()) > 0
    assert all(torch.equal(a, b) for a, b in zip(phi, lighting.network_parameters(), strict=True))
    assert torch.allclose(refined.r, start.r, atol=1e-6) and torch.allclose(refined.t, start.t, atol=1e-7)
    lighting = VideoLighting("G", avatar)
    refined, history = adapt_lighting(scene, frames, start, lighting, _schedule(rounds=1, pose_lr_scale=0.0))
    assert len(history) == 2 and torch.allclose(refined.r, start.r, atol=1e-6)
    assert any(not torch.equal(a, b) for a, b in zip(phi, lighting.network_parameters(), strict=True))


def test_a_lighting_without_code_skips_half_round_a(problem, avatar):
    scene, frames, start = problem
    stages = []
    refined, history = adapt_lighting(scene, frames, start, VideoLighting("none", avatar), _schedule(rounds=1),
                                      on_iteration=lambda stage, it, value: stages.append(stage))
    assert stages == ["adapt φ,p 1/1"] and len(history) == 1
    assert not torch.allclose(refined.r, start.r, atol=1e-5)
    refined, history = adapt_lighting(scene, frames, start, VideoLighting("none", avatar),
                                      _schedule(rounds=1, pose_lr_scale=0.0))
    assert history == []  # nothing to fit


def test_the_reuse_refinement_refits_l_and_p_k_with_phi_fixed(problem, avatar):
    scene, frames, start = problem
    lighting = VideoLighting("G", avatar)
    phi = [p.detach().clone() for p in lighting.network_parameters()]
    stages = []
    schedule = _schedule(rounds=2, light_iterations=2, reuse_pose_iterations=3)
    refined, curve = refine_key_poses(scene, frames, start, lighting, schedule,
                                      on_iteration=lambda stage, it, value: stages.append((stage, it)))
    assert stages == [("refit l 1/2", 1), ("refit l 1/2", 2), ("refine p_k 1/2", 1), ("refine p_k 1/2", 2),
                      ("refit l 2/2", 1), ("refit l 2/2", 2), ("refine p_k 2/2", 1)]
    assert len(curve) == refine_iterations(schedule) == 7
    assert all(torch.equal(a, b) for a, b in zip(phi, lighting.network_parameters(), strict=True))
    assert float(lighting.code.abs().max()) > 0 and not lighting.code.requires_grad
    assert not torch.allclose(refined.r, start.r, atol=1e-5) and not refined.r.requires_grad
    curve_only_l = refine_key_poses(scene, frames, start, VideoLighting("G", avatar),
                                    _schedule(rounds=1, light_iterations=2, pose_lr_scale=0.0))
    assert torch.allclose(curve_only_l[0].r, start.r, atol=1e-6) and len(curve_only_l[1]) == 2
    refined, curve = refine_key_poses(scene, frames, start, VideoLighting("none", avatar),
                                      _schedule(rounds=1, model_iterations=2))
    assert len(curve) == 2 and not torch.allclose(refined.r, start.r, atol=1e-5)


def test_first_adam_steps_have_the_scheduled_sizes_and_the_rounds_are_logged(problem, avatar, caplog):
    """Adam's first step moves every leaf with a gradient by exactly its lr: l by light_lr, φ by model_lr, the
    key poses by model_lr x pose_lr_scale scaled units (0.1 rad, 1 cm). Half-round a's one iteration saw
    batch [0, 1], so half-round b's sees batch [2]: only key frame 2 moves."""
    scene, frames, start = problem
    lighting = VideoLighting("G", responsive_avatar())
    phi = [p.detach().clone() for p in lighting.network_parameters()]
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.step2"):
        refined, history = adapt_lighting(scene, frames, start, lighting,
                                          _schedule(rounds=1, light_lr=0.05, model_lr=1e-3, pose_lr_scale=20.0))
    assert caplog.messages[-1] == f"step 2 round 1/1: loss {history[-1]:.5g}"
    assert torch.allclose(lighting.code.abs(), torch.full((1, 150), 0.05), atol=1e-6)
    moved = torch.cat([(a - b).abs().flatten() for a, b in zip(phi, lighting.network_parameters(), strict=True)])
    assert float(moved.max()) == pytest.approx(1e-3, rel=1e-3)
    assert torch.allclose((refined.r - start.r).abs()[2], torch.full((3,), 0.02 * 0.1), rtol=1e-3)
    assert torch.allclose((refined.t - start.t).abs()[2], torch.full((3,), 0.02 * 0.01), rtol=1e-3)
    assert torch.allclose(refined.r[:2], start.r[:2], atol=1e-6)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.step2"):
        refined, curve = refine_key_poses(scene, frames, start, VideoLighting("G", responsive_avatar()),
                                          _schedule(rounds=1, light_iterations=1, model_lr=1e-3, pose_lr_scale=5.0))
    assert caplog.messages[-1] == f"key poses refined with φ fixed, l refitted: loss {curve[0]:.5g} -> {curve[-1]:.5g}"
    assert torch.allclose((refined.r - start.r).abs()[2], torch.full((3,), 0.005 * 0.1), rtol=1e-3)


def test_the_matte_the_depth_leaf_and_a_small_pose_scale_reach_algorithm_1(problem, avatar):
    scene, frames, start = problem
    matte = torch.zeros(3, SIDE, SIDE, 1)  # nothing compared: Eq. 7 is 0 and nothing moves
    lighting = VideoLighting("G", avatar)
    refined, history = adapt_lighting(scene, frames, start, lighting, _schedule(rounds=1), matte=matte)
    assert history == [0.0, 0.0] and torch.equal(lighting.code, torch.zeros(1, 150))
    small, _ = adapt_lighting(scene, frames, start, VideoLighting("G", avatar),
                              _schedule(rounds=1, batch_size=3, pose_lr_scale=0.5))
    assert torch.allclose((small.r - start.r).abs(), torch.full((3, 3), 0.5e-3 * 0.1), rtol=2e-2)  # float32 at π
    deep, _ = adapt_lighting(scene, frames, start, VideoLighting("G", avatar),
                             _schedule(rounds=1, batch_size=3, pose_lr_scale=0.5, depth_unit=0.15))
    assert not torch.allclose(deep.t, small.t, atol=1e-7)  # the log-depth leaf moved the heads too
    refined, _ = refine_key_poses(scene, frames, start, VideoLighting("G", avatar),
                                  _schedule(rounds=1, batch_size=3, pose_lr_scale=0.5))
    assert torch.allclose((refined.r - start.r).abs(), torch.full((3, 3), 0.5e-3 * 0.1), rtol=2e-2)
    deep, _ = refine_key_poses(scene, frames, start, VideoLighting("G", avatar),
                               _schedule(rounds=1, batch_size=3, pose_lr_scale=0.5, depth_unit=0.15))
    assert not torch.allclose(deep.t, refined.t, atol=1e-7)


def test_cancel_reaches_each_half_round(problem, avatar):
    scene, frames, start = problem
    cancel = threading.Event()
    cancel.set()
    cases = [
        lambda: adapt_lighting(scene, frames, start, VideoLighting("G", avatar), _schedule(), adapt_network=False,
                               cancel=cancel),  # half-round a alone
        lambda: adapt_lighting(scene, frames, start, VideoLighting("none", avatar), _schedule(), cancel=cancel),
        lambda: refine_key_poses(scene, frames, start, VideoLighting("G", avatar), _schedule(pose_lr_scale=0.0),
                                 cancel=cancel),  # l alone
        lambda: refine_key_poses(scene, frames, start, VideoLighting("none", avatar), _schedule(), cancel=cancel),
    ]
    for run in cases:
        with pytest.raises(Cancelled):
            run()


def test_reported_values_rows_and_an_empty_refinement(problem, avatar, caplog):
    scene, frames, start = problem
    values = []
    _, history = adapt_lighting(scene, frames, start, VideoLighting("G", avatar), _schedule(rounds=1),
                                on_iteration=lambda stage, it, value: values.append(value))
    assert values == history
    lighting = VideoLighting("G", avatar)
    reported = []
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.step2"):
        _, curve = refine_key_poses(scene, frames, start, lighting, _schedule(rounds=1, model_iterations=2),
                                    on_iteration=lambda stage, it, value: reported.append(value))
    assert reported == curve and len(curve) == 3 and curve[1] != curve[2]
    assert caplog.messages[-1] == f"key poses refined with φ fixed, l refitted: loss {curve[0]:.5g} -> {curve[2]:.5g}"
    assert not any(p.requires_grad for p in [*lighting.network_parameters(), lighting.code])
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.step2"):
        refined, curve = refine_key_poses(scene, frames, start, VideoLighting("none", avatar),
                                          _schedule(pose_lr_scale=0.0))
    assert curve == [] and caplog.messages[-1] == "key poses refined with φ fixed, l refitted: loss nan -> nan"
    assert torch.allclose(refined.r, start.r, atol=1e-6)  # nothing to fit: step 1's poses
    sequence = VideoLighting("G", responsive_avatar(), frames=5)
    with torch.no_grad():
        sequence.offsets.normal_()
    with torch.no_grad():  # before the refinement refits l in place
        own, _ = image_term(scene, frames, start, sequence.at([4, 0, 2]), 0.3)
        first_rows, _ = image_term(scene, frames, start, sequence.at([0, 1, 2]), 0.3)
    _, curve = refine_key_poses(scene, frames, start, sequence, _schedule(rounds=1, batch_size=3), rows=[4, 0, 2])
    assert curve[0] == pytest.approx(float(own.sum()), rel=1e-3)
    assert abs(float(first_rows.sum()) - float(own.sum())) > 1e-2 * float(own.sum())


def test_the_fast_path_shades_sh_with_the_posed_mesh(problem, avatar):
    scene, frames, start = problem
    sh = VideoLighting("SH", avatar, scene.renderer)
    with torch.no_grad():
        sh.code.add_(0.3)
    loss = _KeyFrameLoss(scene, frames, ScaledParams(start, 0.1, 0.01), sh, _schedule(batch_size=3))
    with torch.no_grad():
        full = float(loss())
        loss.fix_geometry()
        fixed = float(loss())
        plain, _ = image_term(scene, frames, start, VideoLighting("SH", avatar, scene.renderer), 0.3)
    assert fixed == pytest.approx(full, rel=1e-3) and abs(full - float(plain.sum())) > 1e-2 * full
