"""Step 2 for lighting that changes during the video (issue 18; docs/method.md, "Lighting that changes during
the video"): Algorithm 1 once, with a light code per lighting segment.

    1. cuts where the face's colour jumps (fit/lighting_segments.py), key frames chosen per segment;
    2. no cut: the paper's step 2 unchanged (one l). Otherwise Algorithm 1 (fit/step2.py) on the K key frames
       with one code l_s per segment, each from 0 as the paper's l: half-round a fits every l_s, half-round b
       fits φ (shared) and p_k against each key frame's own segment's lighting;
    3. every frame gets its segment's code: a "sequence" lighting, l_t [N, C].

A take tracked with a lighting from another take (issue 27) gets the same key frames, its own l and their
poses refitted with that lighting's φ (`refine_take`).

Measured and not shipped (bench/RESULTS.md, "Lighting that changes during the video"): an offset δ_k per key
frame from a shared l, tied by a random walk inside a segment and a ridge, interpolated in time (0.8 dB worse on
the static shipped clip, 0.3 dB on the moving light), and l + δ_s per segment with a ridge (0.6 dB worse on the
moving light).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from dlatrack_engine.fit.keyframes import select_key_frames
from dlatrack_engine.fit.lighting_segments import (
    detect_cuts,
    face_colour_stats,
    keys_per_segment,
    segment_of,
    segments_of,
)
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene, lighting_rotation
from dlatrack_engine.fit.step2 import adapt_lighting as run_step2
from dlatrack_engine.fit.step2 import refine_key_poses
from dlatrack_engine.fit.video_lighting import VideoLighting

log = logging.getLogger(__name__)

@dataclass
class SequencePlan:
    """The lighting segments of a take and the key frames chosen in them (rows of the selected frames)."""

    segments: list[tuple[int, int]]
    keys: list[int]
    colour_stats: np.ndarray  # [N, 3] log mean face colour per frame


def plan(scene: FaceScene, frames: torch.Tensor, init: FrameParams, count: int) -> SequencePlan:
    """Segments from the face region (the landmark hull of the step-1 mesh) and K key frames spread over them."""
    with torch.no_grad():
        points = scene.landmarks_2d(init).cpu().numpy()
    stats = face_colour_stats(frames.cpu().numpy(), points)
    segments = segments_of(len(frames), detect_cuts(stats))
    rotations = lighting_rotation(init.rotation()).cpu().numpy()
    return SequencePlan(segments, keys_per_segment(rotations, segments, count), stats)


def adapt(scene: FaceScene, frames: torch.Tensor, init: FrameParams, lighting: VideoLighting, plan_: SequencePlan,
          schedule, adapt_network: bool = True, cancel=None,
          on_iteration: Callable[[str, int, float], None] | None = None) -> tuple[FrameParams, list[float]]:
    """Algorithm 1 on the plan's key frames, each lit by its segment's code; `lighting` must have one offset per
    segment. Returns the refined p_k and the loss history, and leaves `lighting` a lighting of every frame."""
    if lighting.offsets is None or len(lighting.offsets) != len(plan_.segments):
        raise ValueError(f"time-varying step 2: the lighting needs {len(plan_.segments)} offsets")
    device = lighting.code.device
    # Each segment's code is fitted on its own, from 0 as the paper's l: l = 0 stays, l_s = δ_s.
    lighting.row_map = torch.as_tensor(segment_of(np.asarray(plan_.keys), plan_.segments), device=device)
    lighting.fit_shared = False
    lighting.code.requires_grad_(False)
    refined, history = run_step2(scene, frames[plan_.keys], init.select(plan_.keys), lighting, schedule,
                                 adapt_network=adapt_network, cancel=cancel, on_iteration=on_iteration)
    log.info("time-varying lighting: %d segments %s", len(plan_.segments), plan_.segments)
    every = torch.as_tensor(segment_of(np.arange(len(frames)), plan_.segments), device=device)
    lighting.set_frame_codes(lighting.code.detach() + lighting.offsets.detach()[every])
    return refined, history


def choose_key_frames(scene: FaceScene, frames: torch.Tensor, init: FrameParams, options,
                      count: int) -> tuple[SequencePlan | None, list[int]]:
    """Step 2's key rows: farthest-point over step 1's rotations (the paper's rule), or per lighting segment
    where `time_varying_lighting` finds cuts; -> the plan (None when not looked for) and the rows."""
    plan_ = plan(scene, frames, init, count) if options.time_varying_lighting else None
    if plan_ is None or len(plan_.segments) == 1:  # the paper's model (no cut: the same keys)
        return plan_, select_key_frames(lighting_rotation(init.rotation()).cpu().numpy(), count)
    return plan_, plan_.keys


def adapt_take(scene: FaceScene, frames: torch.Tensor, init: FrameParams, avatar, options, schedule, cancel=None,
               tick: Callable[[str, int, float], None] | None = None,
               ) -> tuple[VideoLighting, list[int], FrameParams, list[float], dict]:
    """The pipeline's step 2 (`options`: its TrackOptions): the paper's one l on key frames over the rotation
    range (`time_varying_lighting` off), or the above; -> lighting, key rows, refined p_k, losses (of every
    pass, in order) and the lighting.json fields it adds (segments; variation and frame_count of a sequence).

    With `passes` > 1, Algorithm 1 is restarted from its own refined p_k with a fresh l and φ (a departure:
    docs/method.md). Each pass's φ absorbs part of its start's pose error; the next one starts nearer the truth
    and has less to absorb (bench/RESULTS.md, "Algorithm 1 restarted from its own key poses")."""
    plan_, keys = choose_key_frames(scene, frames, init, options, schedule.step2.key_frames)
    varying = plan_ is not None and len(plan_.segments) > 1
    starts = FrameParams(init.r.clone(), init.t.clone(), init.z.clone())
    history: list[float] = []
    for index in range(passes(schedule, options.adapt)):
        if index:
            log.info("step 2 pass %d: Algorithm 1 again, from the refined key poses", index + 1)
        lighting = VideoLighting(options.lighting, avatar, scene.renderer, pretrained=options.pretrained_lighting,
                                 frames=len(plan_.segments) if varying else 0)
        if varying:
            refined, losses = adapt(scene, frames, starts, lighting, plan_, schedule, options.adapt, cancel, tick)
        else:
            refined, losses = run_step2(scene, frames[keys], starts.select(keys), lighting, schedule,
                                        adapt_network=options.adapt, cancel=cancel, on_iteration=tick)
        starts.assign(keys, refined)
        history += losses
    if not varying:
        return lighting, keys, refined, history, {} if plan_ is None else {"segments": [list(plan_.segments[0])]}
    meta: dict = {"segments": [list(s) for s in plan_.segments]}
    if lighting.is_sequence:
        meta.update(variation="sequence", frame_count=len(frames))
    return lighting, keys, refined, history, meta


def passes(schedule, adapt_network: bool) -> int:
    """How many times step 2 runs Algorithm 1: `step2.passes`, or once where p_k cannot move (a pass from
    the same poses would find the same lighting)."""
    s2 = schedule.step2
    return max(1, s2.passes) if adapt_network and s2.pose_lr_scale > 0 else 1


def refine_take(scene: FaceScene, frames: torch.Tensor, init: FrameParams, lighting: VideoLighting, options,
                schedule, cancel=None, tick: Callable[[str, int, float], None] | None = None,
                ) -> tuple[list[int], FrameParams, list[float]]:
    """Step 2 of a take whose lighting is reused from another take (issue 27): the key frames step 2 would
    pick, this take's l and their poses p_k refitted with that lighting's φ fixed (step2.refine_key_poses); a
    sequence lighting (same frame count, checked when it was read) lights each key frame with its own l_t.
    -> key rows, refined p_k, the loss per iteration."""
    _, keys = choose_key_frames(scene, frames, init, options, schedule.step2.key_frames)
    refined, curve = refine_key_poses(scene, frames[keys], init.select(keys), lighting, schedule, rows=keys,
                                      cancel=cancel, on_iteration=tick)
    return keys, refined, curve
