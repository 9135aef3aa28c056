"""fit/step3.py in numbers: the loss the loop sees at the start is Eq. 7 (with G's maps held) + λ_flow Eq. 8 +
the z prior + the temporal prior, each as computed here from the terms; the flow targets; λ_flow = 0 and
`times` None switch their terms off; the reported terms are at the result."""

from __future__ import annotations

import threading

import pytest
import torch
from fit_fixtures import gt_params, intrinsics, truth_lighting

from dlatrack_engine.fit.flow import vertex_flow
from dlatrack_engine.fit.image_term import image_term
from dlatrack_engine.fit.losses import acceleration_penalty, flow_loss
from dlatrack_engine.fit.optim import Cancelled
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.schedule import Schedule, Step3Schedule
from dlatrack_engine.fit.step3 import flow_targets, track_batch

SIDE, WIDE = 48, 40  # half the fixtures' frame height, portrait (Eq. 8 scales by the longer side)


@pytest.fixture(scope="module")
def problem(avatar):
    K = intrinsics()
    K[:2] *= 0.5
    K[0, 2] = WIDE / 2
    scene = FaceScene(avatar, K, WIDE, SIDE)
    truth = gt_params(3)
    lighting = truth_lighting(avatar)
    with torch.no_grad():
        frames = scene.render(truth, lighting, background=torch.full((3, SIDE, WIDE, 3), 0.2)).image.clamp(0, 1)
    start = FrameParams(truth.r + 0.03, truth.t + torch.tensor([0.004, -0.003, 0.01]), truth.z + 0.2)
    return scene, frames, start, lighting


def _schedule(**step3) -> Schedule:
    base = dict(iterations=1, lr=1e-9, lr_halving=0, patience=0, z_prior_weight=5.0, flow_weight=2.0,
                translation_smoothness=0.02, rotation_smoothness=50.0)
    return Schedule(step3=Step3Schedule(**{**base, **step3}), laplacian_weight=0.4, dis_preset="ultrafast")


def test_flow_targets_are_dis_from_the_render_at_the_start(problem):
    scene, frames, start, lighting = problem
    projected, flow, visible = flow_targets(scene, frames, start, lighting, "ultrafast")
    with torch.no_grad():
        out = scene.render(start, lighting, background=frames)
    assert torch.allclose(projected, scene.project(out.vertices_world))
    assert torch.equal(visible, scene.visible_vertices(out.vertices_world))
    assert torch.allclose(flow, vertex_flow(out.image, frames, projected, "ultrafast"))
    assert float(flow.abs().max()) > 0.5 and not flow.requires_grad


@pytest.mark.parametrize("times", [None, torch.tensor([4.0, 5.0, 7.0])], ids=["no prior", "prior"])
def test_the_first_loss_is_the_sum_of_the_terms(problem, times):
    scene, frames, start, lighting = problem
    seen = []
    track_batch(scene, frames, start, lighting, _schedule(), times=times, on_iteration=lambda i, v: seen.append(v))
    held = scene.held_maps(start, lighting)
    with torch.no_grad():
        pixel, out = image_term(scene, frames, start, held, 0.4)
        projected, flow, visible = flow_targets(scene, frames, start, held, "ultrafast")
        flo = flow_loss(scene.project(out.vertices_world), projected, flow, visible, image_side=SIDE)
        total = pixel + 2.0 * flo + 5.0 * start.z.pow(2).sum(-1)
        if times is not None:
            rot_acc, trans_acc = acceleration_penalty(start.rotation(), start.t * 1000.0, times)
            assert float(rot_acc[1]) > 0 and float(trans_acc[1]) > 0
            total = total + 50.0 * rot_acc + 0.02 * trans_acc
    assert float(flo.min()) > 0
    assert seen == [pytest.approx(float(total.sum()), rel=1e-4)]


def test_one_smoothness_weight_alone_turns_the_prior_on(problem):
    scene, frames, start, lighting = problem
    start = start.detach()
    start.r[1] += 0.2  # a jerk, so that a small rotation weight shows
    times = torch.tensor([4.0, 5.0, 7.0])
    seen = []
    for translation, rotation in ((0.0, 0.9), (0.02, 0.0), (0.0, 0.0)):
        schedule = _schedule(flow_weight=0.0, z_prior_weight=0.0, translation_smoothness=translation,
                             rotation_smoothness=rotation)
        track_batch(scene, frames, start, lighting, schedule, times=times, on_iteration=lambda i, v: seen.append(v))
    with torch.no_grad():
        pixel, _ = image_term(scene, frames, start, scene.held_maps(start, lighting), 0.4)
        rot_acc, trans_acc = acceleration_penalty(start.rotation(), start.t * 1000.0, times)
    assert float(0.9 * rot_acc.sum()) > 1e-3 * float(pixel.sum())
    assert seen == [pytest.approx(float((pixel + 0.9 * rot_acc).sum()), rel=1e-5),
                    pytest.approx(float((pixel + 0.02 * trans_acc).sum()), rel=1e-4),
                    pytest.approx(float(pixel.sum()), rel=1e-4)]


def test_flow_weight_override_and_the_reported_terms(problem):
    scene, frames, start, lighting = problem
    seen = []
    result, terms = track_batch(scene, frames, start, lighting, _schedule(iterations=2, lr=0.05, z_prior_weight=0.0),
                                flow_weight=0.0, on_iteration=lambda i, v: seen.append(v))
    with torch.no_grad():
        pixel, _ = image_term(scene, frames, start, scene.held_maps(start, lighting), 0.4)
        at_result, _ = image_term(scene, frames, result, lighting, 0.4)
    assert seen[0] == pytest.approx(float(pixel.sum()), rel=1e-4)
    assert torch.equal(terms.flow, torch.zeros(3)) and torch.allclose(terms.pixel, at_result, rtol=1e-5)
    assert not result.r.requires_grad and not terms.pixel.requires_grad
    assert not torch.allclose(result.r, start.r, atol=1e-4)


def test_the_depth_leaf_the_early_stop_and_cancel_reach_the_loop(problem):
    scene, frames, start, lighting = problem
    plain, _ = track_batch(scene, frames, start, lighting, _schedule(iterations=2, lr=0.05, flow_weight=0.0))
    deep, _ = track_batch(scene, frames, start, lighting, _schedule(iterations=2, lr=0.05, flow_weight=0.0,
                                                                    depth_unit=0.15))
    assert not torch.allclose(plain.t, deep.t, atol=1e-6)  # the log-depth leaf moved the heads too
    seen = []
    track_batch(scene, frames, start, lighting, _schedule(iterations=5, lr=1e-9, flow_weight=0.0, patience=1,
                                                          tolerance=1e9), on_iteration=lambda i, v: seen.append(i))
    assert seen == [1, 2]  # no fall of 1e9 x the loss: stopped as soon as there was one to compare
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        track_batch(scene, frames, start, lighting, _schedule(flow_weight=0.0), cancel=cancel)


def test_the_flow_term_reported_at_the_result_and_no_lighting(problem):
    scene, frames, start, _ = problem
    result, terms = track_batch(scene, frames, start, None, _schedule(iterations=2, lr=0.05, flow_weight=1.0))
    with torch.no_grad():
        projected, flow, visible = flow_targets(scene, frames, start, None, "ultrafast")
        pixel, out = image_term(scene, frames, result, None, 0.4)
        expected = flow_loss(scene.project(out.vertices_world), projected, flow, visible, image_side=SIDE)
    assert torch.allclose(terms.flow, expected, rtol=1e-5) and torch.allclose(terms.pixel, pixel, rtol=1e-5)


def test_the_learning_rate_halves_every_lr_halving_iterations(problem):
    """As in step 1: at a tiny lr two Adam steps move each leaf by 2 lr, or 1.5 lr with halving = 1."""
    scene, frames, start, lighting = problem
    moved = {}
    for halving in (0, 1):
        result, _ = track_batch(scene, frames, start, lighting, _schedule(iterations=2, lr=1e-5, lr_halving=halving,
                                                                          flow_weight=0.0))
        moved[halving] = float((result.z - start.z).abs().double().mean())
    assert moved[0] == pytest.approx(2e-5, rel=0.05) and moved[1] == pytest.approx(1.5e-5, rel=0.05)
