"""fit/lighting_sequence.py on a 6-frame 48-px clip whose light drops to 30 % at frame 3: the plan's segments and key
frames, the codes Algorithm 1 leaves per segment, what the pipeline's step 2 returns with and without
time-varying lighting, and the reuse refinement's key frames."""

from __future__ import annotations

import logging
import threading

import numpy as np
import pytest
import torch
from fit_fixtures import SMALL_SIDE, responsive_avatar, small_clip

from dlatrack_engine.fit import lighting_sequence
from dlatrack_engine.fit.image_term import image_term
from dlatrack_engine.fit.keyframes import select_key_frames
from dlatrack_engine.fit.lighting_segments import face_colour_stats, keys_per_segment, segment_of
from dlatrack_engine.fit.optim import Cancelled
from dlatrack_engine.fit.pipeline import TrackOptions
from dlatrack_engine.fit.scene import lighting_rotation
from dlatrack_engine.fit.schedule import Schedule, Step2Schedule
from dlatrack_engine.fit.step2 import adapt_lighting, refine_iterations
from dlatrack_engine.fit.video_lighting import VideoLighting

SIDE = SMALL_SIDE


@pytest.fixture(scope="module")
def clip():
    avatar = responsive_avatar()
    scene, frames, truth = small_clip(avatar, 6)
    switched = frames.clone()
    switched[3:] *= 0.3
    return avatar, scene, frames, switched, truth


def _schedule(keys: int = 4) -> Schedule:
    return Schedule(step2=Step2Schedule(key_frames=keys, rounds=1, light_iterations=1, light_lr=0.05,
                                        model_iterations=1, batch_size=4))


def test_the_plan_cuts_at_the_switch_and_spreads_the_keys(clip):
    _, scene, steady, switched, truth = clip
    plan = lighting_sequence.plan(scene, switched, truth, 4)
    assert plan.segments == [(0, 3), (3, 6)]
    with torch.no_grad():
        points = scene.landmarks_2d(truth).numpy()
    assert np.allclose(plan.colour_stats, face_colour_stats(switched.numpy(), points))
    rotations = lighting_rotation(truth.rotation()).numpy()
    assert plan.keys == keys_per_segment(rotations, plan.segments, 4)
    assert lighting_sequence.plan(scene, steady, truth, 4).segments == [(0, 6)]


def test_key_frames_with_and_without_time_varying_lighting(clip):
    _, scene, steady, switched, truth = clip
    rotations = lighting_rotation(truth.rotation()).numpy()
    plan, keys = lighting_sequence.choose_key_frames(scene, switched, truth, TrackOptions(key_frames=3), 3)
    assert plan.segments == [(0, 3), (3, 6)] and keys == plan.keys
    assert sum(k < 3 for k in keys) == 2 and sum(k >= 3 for k in keys) == 2  # at least 2 per segment
    plan, keys = lighting_sequence.choose_key_frames(scene, steady, truth, TrackOptions(), 3)
    assert plan.segments == [(0, 6)] and keys == select_key_frames(rotations, 3)
    off = TrackOptions(time_varying_lighting=False)
    expected = (None, select_key_frames(rotations, 3))
    assert lighting_sequence.choose_key_frames(scene, switched, truth, off, 3) == expected


def test_each_segment_gets_its_own_code_from_zero(clip, caplog):
    avatar, scene, _, switched, truth = clip
    plan = lighting_sequence.plan(scene, switched, truth, 4)
    with pytest.raises(ValueError, match=r"^time-varying step 2: the lighting needs 2 offsets$"):
        lighting_sequence.adapt(scene, switched, truth, VideoLighting("G", avatar, frames=3), plan, _schedule())
    with pytest.raises(ValueError, match=r"^time-varying step 2: the lighting needs 2 offsets$"):
        lighting_sequence.adapt(scene, switched, truth, VideoLighting("G", avatar), plan, _schedule())
    lighting = VideoLighting("G", avatar, frames=2)
    with torch.no_grad():  # a shared l that lights the face (at l = 0 this energy-normalised G renders it black)
        lighting.code.fill_(0.5)
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.lighting_sequence"):
        refined, history = lighting_sequence.adapt(scene, switched, truth, lighting, plan, _schedule())
    assert caplog.messages[-1] == "time-varying lighting: 2 segments [(0, 3), (3, 6)]"
    assert len(refined) == 4 and len(history) == 2
    codes = lighting.frame_codes()
    assert codes.shape == (6, 150) and lighting.row_map is None
    assert torch.equal(codes[0], codes[2]) and torch.equal(codes[3], codes[5]) and not torch.equal(codes[0], codes[3])
    # l stays (else 0.5 ± 0.1 somewhere), each segment's offset takes one Adam step of ±0.05 per element,
    # opposite ways where the dimmed segment asks for less light
    steps = codes[[0, 3]] - 0.5
    assert torch.allclose(steps.abs(), torch.full((2, 150), 0.05), atol=1e-5)
    assert bool((steps[0] != steps[1]).any()) and not lighting.fit_shared
    # the same Algorithm 1 set up by hand: frame t's code is l + δ of its segment
    reference = VideoLighting("G", avatar, frames=2)
    with torch.no_grad():
        reference.code.fill_(0.5)
    reference.row_map = torch.as_tensor(segment_of(np.asarray(plan.keys), plan.segments))
    reference.fit_shared = False
    reference.code.requires_grad_(False)
    adapt_lighting(scene, switched[plan.keys], truth.select(plan.keys), reference, _schedule())
    expected = 0.5 + reference.offsets.detach()[[0, 0, 0, 1, 1, 1]]
    assert torch.allclose(codes, expected, atol=1e-6)


def test_cancel_and_progress_reach_every_path(clip):
    avatar, scene, steady, switched, truth = clip
    cancel = threading.Event()
    cancel.set()
    plan = lighting_sequence.plan(scene, switched, truth, 4)
    runs = {
        "adapt": lambda **kw: lighting_sequence.adapt(scene, switched, truth, VideoLighting("G", avatar, frames=2),
                                                      plan, _schedule(), **kw),
        "one l": lambda **kw: lighting_sequence.adapt_take(scene, steady, truth, avatar, TrackOptions(), _schedule(3),
                                                           **{"tick" if k == "on_iteration" else k: v
                                                              for k, v in kw.items()}),
        "per segment": lambda **kw: lighting_sequence.adapt_take(
            scene, switched, truth, avatar, TrackOptions(), _schedule(),
            **{"tick" if k == "on_iteration" else k: v for k, v in kw.items()}),
        "reuse": lambda **kw: lighting_sequence.refine_take(
            scene, switched, truth, VideoLighting("G", avatar), TrackOptions(), _schedule(3),
            **{"tick" if k == "on_iteration" else k: v for k, v in kw.items()}),
    }
    for name, run in runs.items():
        with pytest.raises(Cancelled):
            run(cancel=cancel)
        stages = []
        run(on_iteration=lambda stage, it, value, seen=stages: seen.append(stage))
        assert stages, name


def test_the_options_lighting_kind_and_pretrained_g_reach_both_paths(clip):
    avatar, scene, steady, switched, truth = clip
    for frames, sequence in ((steady, False), (switched, True)):
        lighting, *_ = lighting_sequence.adapt_take(scene, frames, truth, avatar, TrackOptions(lighting="SH"),
                                                    _schedule(3))
        assert lighting.kind == "SH" and lighting.renderer is scene.renderer and lighting.is_sequence == sequence
        lighting, *_ = lighting_sequence.adapt_take(scene, frames, truth, avatar, TrackOptions(adapt=False),
                                                    _schedule(3))
        assert _same(lighting.network, avatar.lighting) and lighting.is_sequence == sequence


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_the_pipelines_step_2_and_its_lighting_json_fields(clip):
    avatar, scene, steady, switched, truth = clip
    scratch = VideoLighting("G", avatar, pretrained=False).network  # the ablation's φ (seed 0)
    lighting, keys, refined, history, meta = lighting_sequence.adapt_take(
        scene, switched, truth, avatar, TrackOptions(), _schedule())
    assert meta == {"segments": [[0, 3], [3, 6]], "variation": "sequence", "frame_count": 6}
    assert lighting.is_sequence and lighting.frame_codes().shape == (6, 150) and len(keys) == len(refined) == 4
    assert not _same(lighting.network, avatar.lighting) and len(history) == 2  # φ adapted
    lighting, *_ = lighting_sequence.adapt_take(
        scene, switched, truth, avatar, TrackOptions(pretrained_lighting=False, adapt=False), _schedule())
    assert lighting.is_sequence and _same(lighting.network, scratch)
    lighting, keys, _, history, meta = lighting_sequence.adapt_take(
        scene, steady, truth, avatar, TrackOptions(pretrained_lighting=False, adapt=False), _schedule(3))
    assert meta == {"segments": [[0, 6]]} and not lighting.is_sequence and _same(lighting.network, scratch)
    assert keys == select_key_frames(lighting_rotation(truth.rotation()).numpy(), 3) and len(history) == 1
    lighting, keys, _, history, meta = lighting_sequence.adapt_take(
        scene, switched, truth, avatar, TrackOptions(time_varying_lighting=False, lighting="none"), _schedule(2))
    assert meta == {} and lighting.kind == "none" and len(keys) == 2 and len(history) == 1


def test_a_reused_lightings_take_refits_the_key_frames_step_2_would_pick(clip):
    avatar, scene, _, switched, truth = clip
    sequence = VideoLighting("G", avatar, frames=6)  # a lighting of this take's 6 frames: rows are frames
    with torch.no_grad():
        sequence.offsets.normal_()
    keys = lighting_sequence.choose_key_frames(scene, switched, truth, TrackOptions(), 3)[1]
    with torch.no_grad():  # before the refinement refits l in place
        own, _ = image_term(scene, switched[keys], truth.select(keys), sequence.at(keys), 0.25)
        first_rows, _ = image_term(scene, switched[keys], truth.select(keys), sequence.at(list(range(len(keys)))), 0.25)
    _, _, curve = lighting_sequence.refine_take(scene, switched, truth, sequence, TrackOptions(), _schedule(3))
    assert curve[0] == pytest.approx(float(own.sum()), rel=1e-3)
    assert abs(float(first_rows.sum()) - float(own.sum())) > 1e-2 * float(own.sum())
    lighting = VideoLighting("G", avatar)
    schedule = _schedule(3)
    seen = []
    keys, refined, curve = lighting_sequence.refine_take(scene, switched, truth, lighting, TrackOptions(), schedule,
                                                         tick=lambda stage, it, value: seen.append(stage))
    assert keys == lighting_sequence.choose_key_frames(scene, switched, truth, TrackOptions(), 3)[1]
    assert len(refined) == len(keys) and len(curve) == refine_iterations(schedule) == len(seen)


def test_each_pass_restarts_algorithm_1_from_the_last_passes_key_poses_with_fresh_lighting(clip, monkeypatch):
    """`Step2Schedule.passes`: every pass starts from a fresh l (0) and the pre-trained φ, at the p_k the pass
    before refined, on both paths; where p_k cannot move (no adaptation) one pass is run."""
    avatar, scene, steady, switched, truth = clip
    calls = []

    def spy(real):
        def run(scene_, frames_, params, lighting, *args, **kwargs):
            calls.append((params.r.clone(), params.t.clone(), lighting, lighting.code.detach().clone(),
                          _same(lighting.network, avatar.lighting)))
            refined, history = real(scene_, frames_, params, lighting, *args, **kwargs)
            calls[-1] += (refined,)
            return refined, history
        return run

    schedule = _schedule(3)
    schedule.step2.passes = 2
    monkeypatch.setattr(lighting_sequence, "run_step2", spy(lighting_sequence.run_step2))
    lighting, keys, refined, history, _ = lighting_sequence.adapt_take(scene, steady, truth, avatar, TrackOptions(),
                                                                       schedule)
    assert len(calls) == 2 and len(history) == 4 and lighting is calls[1][2] and calls[0][2] is not lighting
    first, second = calls
    assert torch.equal(first[0], truth.r[keys]) and not torch.equal(first[5].r, first[0])  # pass 1 moved p_k
    assert torch.equal(second[0], first[5].r) and torch.equal(second[1], first[5].t)
    assert not second[3].any() and second[4]  # l = 0, φ pre-trained, as in pass 1
    assert torch.equal(refined.r, second[5].r)

    calls.clear()
    lighting_sequence.adapt_take(scene, switched, truth, avatar, TrackOptions(), schedule)  # per segment
    assert len(calls) == 2 and calls[1][2].is_sequence and torch.equal(calls[1][0], calls[0][5].r)
    calls.clear()
    lighting_sequence.adapt_take(scene, steady, truth, avatar, TrackOptions(adapt=False), schedule)
    assert len(calls) == 1
    assert lighting_sequence.passes(schedule, adapt_network=False) == 1
    schedule.step2.pose_lr_scale = 0.0
    assert lighting_sequence.passes(schedule, adapt_network=True) == 1
