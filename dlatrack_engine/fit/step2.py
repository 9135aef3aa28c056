"""Step 2: lighting adaptation, Algorithm 1 (Eq. 7) on K key frames.

    l <- 0, φ <- pre-trained
    repeat `rounds` times:
        a. freeze φ and {p_k}: fit l for `light_iterations` (Adam, `light_lr`)
        b. freeze l: fit φ and {p_k} for `model_iterations` (Adam, `model_lr`)

    L_pix(l, φ, {p_k}) = Σ_k ‖r_k ⊙ w_k‖₁ + λ_Δ ‖Δr_k ⊙ w_k‖₁,   r_k = I_k − Î(p_k)          (Eq. 7)

Î(p_k) is composited over I_k and w_k is the interior of its coverage (`fit/image_term.py`, the same term
as step 3), optionally times a per-frame foreground matte. In the first `detail_rounds` rounds half-round b
also pays R(φ), the fine detail φ redraws (`fit/detail_prior.py`, a departure: docs/method.md). On CPU the
K frames are visited in fixed mini-batches of `batch_size`, cycling, one batch per iteration (the paper's GPU
batch is all K; with batch_size >= K this is exactly that).

When the key-frame poses are not optimised (`pose_lr_scale = 0`; and always in half-round
a, where p_k is frozen) the geometry and the fully-lit texture are constants, so each key frame is decoded
and rasterised once per half-round and every iteration only re-runs G and the texture lookup: the loss is
the same function of (l, φ), at a fraction of the cost on a CPU.

`refine_key_poses` is Algorithm 1 with φ frozen (l and p_k in turn): what a take whose lighting was adapted on
another take (issue 27) still needs, since step 1's pose error and its exposure are the take's own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import torch

from dlatrack_engine.fit.detail_prior import DetailPrior
from dlatrack_engine.fit.image_term import composite_loss, image_term
from dlatrack_engine.fit.optim import run_adam
from dlatrack_engine.fit.params import FrameParams, ScaledParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.models.lighting import relight

log = logging.getLogger(__name__)


class _FixedGeometry:
    """Decoded texture, rasterised UVs and coverage of each key-frame batch at fixed p_k (no gradients)."""

    def __init__(self, scene: FaceScene, params: FrameParams, batches: list[list[int]]) -> None:
        self.scene = scene
        self.entries = []
        with torch.no_grad():
            for index in batches:
                sub = params.select(index)
                out = scene.render(sub, None)
                uv = scene.renderer.render(out.vertices_world, scene.camera(len(index)), out.texture).uv
                self.entries.append((out.texture, uv, out.mask, scene.head_view(sub),
                                     out.vertices_world))

    def loss(self, batch: int, frames: torch.Tensor, lighting: VideoLighting, laplacian_weight: float,
             matte: torch.Tensor | None, detail: DetailPrior | None = None) -> torch.Tensor:
        texture, uv, mask, head_view, world = self.entries[batch]
        gain, bias = lighting.gain_bias(head_view, texture, world, self.scene.avatar.topology.faces)
        relit = relight(texture, gain, bias)  # Eq. 2
        colour = self.scene.renderer.backend.texture(relit.permute(0, 2, 3, 1), uv)
        image = colour * mask + frames * (1.0 - mask)  # composited over the frame, as image_term renders
        per_frame = composite_loss(frames, image, mask, laplacian_weight, matte)  # Eq. 7
        if detail is not None:
            per_frame = per_frame + detail(lighting.code, head_view, texture, gain, bias)
        return per_frame


class _KeyFrameLoss:
    """Eq. 7 summed over the K key frames, estimated from one fixed mini-batch per call (cycling through them):
    the objective of both Algorithm 1 and the reuse refinement below. `rows` maps each key frame to its row in
    the lighting (`lighting.at`: its own l_k of a time-varying lighting)."""

    def __init__(self, scene: FaceScene, frames: torch.Tensor, leaves: ScaledParams, lighting: VideoLighting,
                 schedule: Schedule, matte: torch.Tensor | None = None, rows: list[int] | None = None) -> None:
        self.scene, self.frames, self.leaves, self.lighting, self.matte = scene, frames, leaves, lighting, matte
        self.laplacian_weight = schedule.laplacian_weight
        self.batches = _batches(frames.shape[0], schedule.step2.batch_size)
        self.rows = list(range(frames.shape[0])) if rows is None else list(rows)
        self.calls = 0
        self.fixed: _FixedGeometry | None = None
        self.detail: DetailPrior | None = None  # set while φ is fitted (half-round b)

    def fix_geometry(self) -> None:
        """Decode and rasterise every batch at the current p_k once (p_k frozen until `free_geometry`)."""
        self.fixed = _FixedGeometry(self.scene, self.leaves.params().detach(), self.batches)

    def free_geometry(self) -> None:
        self.fixed = None

    def __call__(self) -> torch.Tensor:
        b = self.calls % len(self.batches)
        index = self.batches[b]
        self.calls += 1
        matte = self.matte[index] if self.matte is not None else None
        light = self.lighting.at([self.rows[i] for i in index])
        if self.fixed is not None:
            per_frame = self.fixed.loss(b, self.frames[index], light, self.laplacian_weight, matte, self.detail)
        else:
            sub = self.leaves.params().select(index)
            per_frame, out = image_term(self.scene, self.frames[index], sub, light, self.laplacian_weight, matte)
            if self.detail is not None:
                per_frame = per_frame + self.detail(light.code, self.scene.head_view(sub), out.texture, out.gain,
                                                    out.bias)
        return per_frame.sum() * (self.frames.shape[0] / len(index))  # an unbiased estimate of the sum over K


def adapt_lighting(scene: FaceScene, frames: torch.Tensor, params: FrameParams, lighting: VideoLighting,
                   schedule: Schedule, adapt_network: bool = True, matte: torch.Tensor | None = None,
                   cancel: threading.Event | None = None,
                   on_iteration: Callable[[str, int, float], None] | None = None) -> tuple[FrameParams, list[float]]:
    """Algorithm 1 on key frames [K, H, W, 3] with initial params p_k (from step 1).

    Returns the refined p_k and the loss after each half-round. `adapt_network=False` is the "without
    adaptation" ablation: only l is fitted (φ stays pre-trained, p_k stay at step 1).
    A time-varying lighting (`lighting.at`, fit/lighting_sequence.py) lights each key frame with its own l_k.
    """
    s2 = schedule.step2
    leaves = ScaledParams(params, schedule.rotation_unit, schedule.translation_unit, depth_unit=s2.depth_unit)
    loss_fn = _KeyFrameLoss(scene, frames.to(scene.device), leaves, lighting, schedule, matte)
    history: list[float] = []
    network = lighting.network_parameters()
    codes = lighting.code_parameters()
    detail = (DetailPrior(lighting.network, s2.detail_weight)
              if adapt_network and network and s2.detail_rounds > 0 else None)
    for round_index in range(s2.rounds):
        _trainable([*network, *leaves.parameters()], False)
        _trainable(codes, lighting.code.numel() > 0)
        loss_fn.fix_geometry()
        if lighting.code.numel() > 0:  # a. fit l
            loss, _ = run_adam(codes, loss_fn, s2.light_iterations, s2.light_lr, cancel=cancel,
                               on_iteration=_report(on_iteration, f"adapt l {round_index + 1}/{s2.rounds}"))
            history.append(loss)
        _trainable(codes, False)
        groups = _model_groups(leaves, network, schedule) if adapt_network else []
        if groups:  # b. fit φ and p_k
            if s2.pose_lr_scale > 0:
                loss_fn.free_geometry()
            loss_fn.detail = detail if round_index < s2.detail_rounds else None
            loss, _ = run_adam(groups, loss_fn, s2.model_iterations, s2.model_lr, cancel=cancel,
                               on_iteration=_report(on_iteration, f"adapt φ,p {round_index + 1}/{s2.rounds}"))
            loss_fn.detail = None
            history.append(loss)
        log.info("step 2 round %d/%d: loss %.5g", round_index + 1, s2.rounds, history[-1] if history else float("nan"))
    _trainable(network, False)
    return leaves.params().detach(), history


def pose_iterations(schedule: Schedule) -> int:
    """Iterations of `refine_key_poses`: as many as Algorithm 1's half-rounds b give p_k, unless set."""
    s2 = schedule.step2
    return s2.reuse_pose_iterations or s2.rounds * s2.model_iterations


def refine_key_poses(scene: FaceScene, frames: torch.Tensor, params: FrameParams, lighting: VideoLighting,
                     schedule: Schedule, rows: list[int] | None = None, cancel: threading.Event | None = None,
                     on_iteration: Callable[[str, int, float], None] | None = None) -> tuple[FrameParams, list[float]]:
    """Algorithm 1 with φ frozen, for a take whose lighting was adapted on another take (issue 27).

    Step 2 is skipped, but step 1's pose error (mostly the head's depth) belongs to this take, and Algorithm 1
    is what corrects it. φ is the room's and stays. It also carries the pose-error pattern of the take it was
    adapted on, and p_k refined against it with the other take's l drift sideways (bench/RESULTS.md, issue 27),
    so l is refitted too, as half-round a does:
      a. l, geometry fixed (light_iterations at light_lr): a global code, too coarse to paint a pose error into
         the texture, it takes up this take's exposure and light strength;
      b. p_k on Eq. 7 at model_lr x pose_lr_scale,
    `rounds` times, `pose_iterations` of b in all. A sequence lighting refits only its shared l (the per-frame
    offsets stay). `rows`: each key frame's row in `lighting`, default 0..K-1. `lighting`'s l is changed in
    place. Returns the refined p_k and the loss at every iteration (l's and p_k's).
    """
    s2 = schedule.step2
    leaves = ScaledParams(params, schedule.rotation_unit, schedule.translation_unit, depth_unit=s2.depth_unit)
    _trainable([*lighting.network_parameters(), *lighting.code_parameters()], False)
    loss_fn = _KeyFrameLoss(scene, frames.to(scene.device), leaves, lighting, schedule, rows=rows)
    code = [lighting.code] if lighting.code.numel() > 0 else []
    poses = list(leaves.parameters()) if s2.pose_lr_scale > 0 else []  # 0: Algorithm 1 keeps step 1's poses
    curve: list[float] = []
    for round_index, count in enumerate(_split(pose_iterations(schedule), s2.rounds)):
        stage = f"{round_index + 1}/{s2.rounds}"
        _trainable(poses, False)
        if code:  # a. l
            _trainable(code, True)
            loss_fn.fix_geometry()
            run_adam(code, loss_fn, s2.light_iterations, s2.light_lr, cancel=cancel,
                     on_iteration=_record(curve, on_iteration, f"refit l {stage}"))
            _trainable(code, False)
            loss_fn.free_geometry()
        if poses and count:  # b. p_k
            _trainable(poses, True)
            run_adam(poses, loss_fn, count, s2.model_lr * s2.pose_lr_scale, cancel=cancel,
                     on_iteration=_record(curve, on_iteration, f"refine p_k {stage}"))
    _trainable(poses, False)
    log.info("key poses refined with φ fixed, l refitted: loss %.5g -> %.5g", curve[0] if curve else float("nan"),
             curve[-1] if curve else float("nan"))
    return leaves.params().detach(), curve


def refine_iterations(schedule: Schedule) -> int:
    """Every iteration `refine_key_poses` runs (l's and p_k's): the pipeline's progress total."""
    return schedule.step2.rounds * schedule.step2.light_iterations + pose_iterations(schedule)


def _split(total: int, parts: int) -> list[int]:
    """`total` iterations over `parts` rounds, as evenly as integers allow (the first rounds one more)."""
    parts = max(1, parts)
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def _record(curve: list[float], on_iteration: Callable[[str, int, float], None] | None,
            stage: str) -> Callable[[int, float], None]:
    def record(it: int, value: float) -> None:
        curve.append(value)
        if on_iteration is not None:
            on_iteration(stage, it, value)
    return record


def _batches(k: int, size: int) -> list[list[int]]:
    """The fixed mini-batches of K key frames that the iterations cycle through."""
    size = max(1, min(size, k))
    return [list(range(i, min(i + size, k))) for i in range(0, k, size)]


def _report(on_iteration: Callable[[str, int, float], None] | None,
            stage: str) -> Callable[[int, float], None] | None:
    return None if on_iteration is None else (lambda it, value: on_iteration(stage, it, value))


def _trainable(parameters, flag: bool) -> None:
    for p in parameters:
        p.requires_grad_(flag)


def _model_groups(leaves: ScaledParams, network: list[torch.nn.Parameter], schedule: Schedule) -> list[dict]:
    """Half-round b's Adam groups, made trainable: p_k at pose_lr_scale x model_lr (unless 0), φ at model_lr."""
    s2 = schedule.step2
    groups = []
    if s2.pose_lr_scale > 0:
        _trainable(leaves.parameters(), True)
        groups.append({"params": list(leaves.parameters()), "lr": s2.model_lr * s2.pose_lr_scale})
    if network:
        _trainable(network, True)
        groups.append({"params": network, "lr": s2.model_lr})
    return groups
