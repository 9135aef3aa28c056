"""Step 3: per-frame tracking with G and l fixed (Eq. 7 + Eq. 8).

    L(p) = L_pix(p) + λ_flow L_flow(p)
    L_flow(p) = Σ_i ‖Π(r M(i) + t) − Π(r̃ M̃(i) + t̃) − d_i‖²  over visible vertices i           (Eq. 8)

(both as means, in the units of losses.py, so that λ_flow = 3.0 means the same at any working size)

d is OpenCV DIS flow from the render at the step-1 parameters p̃ (composited over the frame, so the
background matches) to the frame, sampled at the projected vertices. Given G and l, frames are optimised
in fixed batches of `batch_size` consecutive frames, each batch from its step-1 start, with a temporal prior
on the head's acceleration inside the batch (a departure: docs/method.md): the result of a frame does not
depend on which batches were tracked before it, which is what lets an interrupted job resume and reproduce
the same output. G's gain and bias maps are evaluated once per batch, at the start poses,
and held while the poses move (`HeldMaps`, a measured departure: docs/method.md).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

import torch

from dlatrack_engine.fit.flow import vertex_flow
from dlatrack_engine.fit.image_term import image_term
from dlatrack_engine.fit.losses import acceleration_penalty, flow_loss
from dlatrack_engine.fit.optim import run_adam
from dlatrack_engine.fit.params import FrameParams, ScaledParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.fit.video_lighting import HeldMaps, VideoLighting

log = logging.getLogger(__name__)


@dataclass
class TrackTerms:
    """Per-frame loss terms at the solution, [B] each."""

    pixel: torch.Tensor
    flow: torch.Tensor


def flow_targets(scene: FaceScene, frames: torch.Tensor, init: FrameParams,
                 lighting: VideoLighting | HeldMaps | None,
                 preset: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(Π(r̃ M̃ + t̃) [B, V, 2], d [B, V, 2], visible [B, V]) for Eq. 8, all constants."""
    with torch.no_grad():
        out = scene.render(init, lighting, background=frames)
        projected_init = scene.project(out.vertices_world)
        visible = scene.visible_vertices(out.vertices_world)
        flow = vertex_flow(out.image, frames, projected_init, preset)
    return projected_init, flow, visible


def track_batch(scene: FaceScene, frames: torch.Tensor, init: FrameParams, lighting: VideoLighting | None,
                schedule: Schedule, flow_weight: float | None = None, times: torch.Tensor | None = None,
                cancel: threading.Event | None = None,
                on_iteration: Callable[[int, float], None] | None = None) -> tuple[FrameParams, TrackTerms]:
    """Eq. 7 + 8 for frames [B, H, W, 3] from their step-1 parameters `init`; returns p and the terms.

    `times` [B]: the frames' numbers in the video, for the temporal prior; None = frames of no sequence (no
    prior), e.g. key frames spread over a clip."""
    s3 = schedule.step3
    smooth = times is not None and (s3.translation_smoothness > 0 or s3.rotation_smoothness > 0)
    lam = s3.flow_weight if flow_weight is None else flow_weight
    frames = frames.to(scene.device)
    # G's maps held at the start poses while the poses move (HeldMaps); the reported terms use G itself.
    held = scene.held_maps(init, lighting) if lighting is not None else None
    if lam > 0:  # at p̃ the held maps are G's own: the render DIS sees is the same, without a second G pass
        projected_init, flow, visible = flow_targets(scene, frames, init, held, schedule.dis_preset)
    leaves = ScaledParams(init, schedule.rotation_unit, schedule.translation_unit, depth_unit=s3.depth_unit)

    def terms(params: FrameParams, shading: VideoLighting | HeldMaps | None) -> TrackTerms:
        pix, out = image_term(scene, frames, params, shading, schedule.laplacian_weight)  # Eq. 7
        if lam > 0:
            flo = flow_loss(scene.project(out.vertices_world), projected_init, flow, visible,
                            image_side=max(frames.shape[1:3]))  # Eq. 8
        else:
            flo = torch.zeros_like(pix)
        return TrackTerms(pix, flo)

    def loss_fn() -> torch.Tensor:
        params = leaves.params()
        t = terms(params, held)
        total = t.pixel + lam * t.flow + s3.z_prior_weight * params.z.pow(2).sum(-1)
        if smooth:
            rot_acc, trans_acc = acceleration_penalty(params.rotation(), params.t * 1000.0, times)
            total = total + s3.rotation_smoothness * rot_acc + s3.translation_smoothness * trans_acc
        return total.sum()

    run_adam(leaves.parameters(), loss_fn, s3.iterations, s3.lr, s3.lr_halving, s3.tolerance, s3.patience,
             cancel, on_iteration)
    result = leaves.params().detach()
    with torch.no_grad():
        final = terms(result, lighting)
    return result, TrackTerms(final.pixel.detach(), final.flow.detach())

