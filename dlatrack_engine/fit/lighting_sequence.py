"""Step 2 for lighting that changes during the video (issue 18; docs/method.md, "Lighting that changes during
the video"): Algorithm 1 once, with a light code per lighting segment.

    1. cuts where the face's colour jumps (fit/lighting_segments.py), key frames chosen per segment;
    2. no cut: the paper's step 2 unchanged (one l). Otherwise Algorithm 1 (fit/step2.py) on the K key frames
       with one code l_s per segment, each from 0 as the paper's l: half-round a fits every l_s, half-round b
       fits φ (shared) and p_k against each key frame's own segment's lighting;
    3. every frame gets its segment's code: a "sequence" lighting, l_t [N, C].

`PER_SEGMENT = False` instead gives every key frame an offset δ_k from a shared l, tied by a random walk
inside a segment and a ridge, interpolated in time between key frames (a lighting is then stored static when
no key frame departs from the shared l by `STATIC_LEVELS`); measured worse on the static and moving-light
clips (bench/RESULTS.md), so not the default. A first per-segment version, l + δ_s with a ridge on δ_s, was
measured too: no better on the switch clip, 0.6 dB worse on the moving one, and the ridge kept the two
codes of a tiny test clip's switch 0.08 apart.
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
    interpolation_weights,
    keys_per_segment,
    offset_prior,
    segment_of,
    segments_of,
)
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene, lighting_rotation
from dlatrack_engine.fit.step2 import adapt_lighting as run_step2
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.models.lighting import relight

log = logging.getLogger(__name__)

# Weights of the offsets' prior against Algorithm 1's loss (a sum over the K key frames of mean 8-bit residual
# levels). WALK_WEIGHT per squared code unit per frame of separation; RIDGE_WEIGHT per squared code unit.
WALK_WEIGHT = 20.0
RIDGE_WEIGHT = 1.0
STATIC_LEVELS = 1.0  # below this the per-frame lighting is not worth a sequence: stored static
PER_SEGMENT = True  # one offset per lighting segment (piecewise-constant l_t) instead of one per key frame


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
    """Algorithm 1 on the plan's key frames with per-key codes; `lighting` must have one offset per key
    frame. Returns the refined p_k and the loss history, and leaves `lighting` a lighting of every frame."""
    keys = plan_.keys
    per_segment = PER_SEGMENT
    rows = len(plan_.segments) if per_segment else len(keys)
    if lighting.offsets is None or len(lighting.offsets) != rows:
        raise ValueError(f"time-varying step 2: the lighting needs {rows} offsets")
    key_segment = torch.as_tensor(segment_of(np.asarray(keys), plan_.segments), device=lighting.code.device)
    if per_segment:  # each segment's code is fitted on its own, from 0 as the paper's l: l = 0, l_s = δ_s
        lighting.row_map, lighting.fit_shared = key_segment, False
        lighting.code.requires_grad_(False)

    def prior() -> torch.Tensor:
        return offset_prior(lighting.offsets, keys, plan_.segments, WALK_WEIGHT, RIDGE_WEIGHT)

    refined, history = run_step2(scene, frames[keys], init.select(keys), lighting, schedule,
                                 adapt_network=adapt_network, cancel=cancel, on_iteration=on_iteration,
                                 prior=None if per_segment else prior)
    levels = departure_levels(scene, refined, lighting)
    log.info("time-varying lighting: %d segment(s) %s, per-key departure from the shared l %.2f-%.2f levels",
             len(plan_.segments), plan_.segments, float(levels.min()), float(levels.max()))
    if len(plan_.segments) == 1 and float(levels.max()) < STATIC_LEVELS:
        lighting.offsets = None
    else:
        if per_segment:
            every = torch.as_tensor(segment_of(np.arange(len(frames)), plan_.segments), device=lighting.code.device)
            offsets = lighting.offsets.detach()[every]
        else:
            weights = torch.as_tensor(interpolation_weights(keys, plan_.segments, len(frames)),
                                      dtype=lighting.code.dtype, device=lighting.code.device)
            offsets = weights @ lighting.offsets.detach()
        lighting.set_frame_codes(lighting.code.detach() + offsets)
    return refined, history


@torch.no_grad()
def departure_levels(scene: FaceScene, params: FrameParams, lighting: VideoLighting) -> torch.Tensor:
    """[K] mean |relit(l + δ_k) − relit(l)| over the texture, in 8-bit levels, at the key frames' poses."""
    out = scene.render(params, None)
    head_view = scene.head_view(params)
    faces = scene.avatar.topology.faces
    own = relight(out.texture, *lighting.at(list(range(len(params)))).gain_bias(
        head_view, out.texture, out.vertices_world, faces))
    shared = relight(out.texture, *lighting.gain_bias(head_view, out.texture, out.vertices_world, faces))
    return (own - shared).abs().mean(dim=(1, 2, 3)) * 255.0


def adapt_take(scene: FaceScene, frames: torch.Tensor, init: FrameParams, avatar, options, schedule, cancel=None,
               tick: Callable[[str, int, float], None] | None = None,
               ) -> tuple[VideoLighting, list[int], FrameParams, list[float], dict]:
    """The pipeline's step 2 (`options`: its TrackOptions): the paper's one l on key frames over the rotation
    range (`time_varying_lighting` off), or the above; -> lighting, key rows, refined p_k, losses and the
    lighting.json fields it adds (segments; variation and frame_count of a sequence)."""
    kind, count = options.lighting, schedule.step2.key_frames
    plan_ = plan(scene, frames, init, count) if options.time_varying_lighting else None
    if plan_ is None or (PER_SEGMENT and len(plan_.segments) == 1):  # the paper's model (no cut: the same keys)
        lighting = VideoLighting(kind, avatar, scene.renderer, pretrained=options.pretrained_lighting)
        keys = select_key_frames(lighting_rotation(init.rotation()).cpu().numpy(), count)
        refined, history = run_step2(scene, frames[keys], init.select(keys), lighting, schedule,
                                     adapt_network=options.adapt, cancel=cancel, on_iteration=tick)
        return lighting, keys, refined, history, {} if plan_ is None else {"segments": [list(plan_.segments[0])]}
    lighting = VideoLighting(kind, avatar, scene.renderer, pretrained=options.pretrained_lighting,
                             frames=len(plan_.segments) if PER_SEGMENT else len(plan_.keys))
    refined, history = adapt(scene, frames, init, lighting, plan_, schedule, options.adapt, cancel, tick)
    meta: dict = {"segments": [list(s) for s in plan_.segments]}
    if lighting.is_sequence:
        meta.update(variation="sequence", frame_count=len(frames))
    return lighting, plan_.keys, refined, history, meta
