"""G's texture-space warm-up before the render-loss training of Eq. 4-5 (not in the paper).

The same comparison as Eq. 4 — relit texture against the captured image — but made in UV space against
the unwrapped, visibility-weighted camera images, with the DAM's textures for each (frame, camera)
decoded once from the encoder's codes. No rasterisation per step, so on a CPU it runs ~10x more steps
per minute; the Eq. 4-5 stage that follows then refines G (and the codes and geometry) through the
renderer. The shipped sample avatar trains 120 warm-up epochs before its 100 Eq. 4-5 epochs
(`dlatrack train sample`); `texture_warmup_epochs = 0` (LightingTrainConfig's default) skips it.
`texture_warmup_lr_decay_every` multiplies the warm-up's rate by `lr_decay` every N epochs (a constant rate
ends noisy). Why it exists and what it measured: docs/method.md, "Texture-space warm-up".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from dlatrack_engine.models.dam import DAM
from dlatrack_engine.models.lighting import LightingModel, head_view_vector, relight
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.data import LightStageData, Split
from dlatrack_engine.train.experiments.hook import WARMUP, LightingBatch, LossTerm, add_terms
from dlatrack_engine.train.loop import run_epoch
from dlatrack_engine.train.pattern_mix import mixed_exposures, same_pose_partners
from dlatrack_engine.train.unwrap import UnwrappedFrames, unwrap_frames

if TYPE_CHECKING:
    from dlatrack_engine.train.lighting_trainer import LightingTrainConfig

log = logging.getLogger(__name__)


@torch.no_grad()
def decode_textures(
    dam: DAM, data: LightStageData, frame_ids: torch.Tensor, pairs: torch.Tensor, codes: torch.Tensor
) -> torch.Tensor:
    """T̂ = D(z_t, v_v) for every (row of `frame_ids`, camera) pair [P,2], float16 [P,3,T,T] in pair order."""
    decoded = []
    for start in range(0, len(pairs), 16):
        rows, cams = pairs[start : start + 16, 0], pairs[start : start + 16, 1]
        view = data.view_vectors(frame_ids[rows], cams).to(codes.device)
        decoded.append(dam.decode(codes[frame_ids[rows].to(codes.device)], view)[1].half())
    return torch.cat(decoded)


class WarmupLosses:
    """The warm-up's loss for a batch of pair indices: relative, visibility-weighted L1 in texture space."""

    def __init__(self, lighting: LightingModel, data: LightStageData, frames: list[int], unwrapped: UnwrappedFrames,
                 pairs: torch.Tensor, textures: torch.Tensor, cfg: LightingTrainConfig,
                 extra: Sequence[LossTerm]) -> None:  # fmt: skip
        self.lighting, self.data, self.unwrapped, self.pairs = lighting, data, unwrapped, pairs
        self.textures, self.cfg, self.extra = textures, cfg, extra
        self.frame_ids = torch.tensor(frames)
        self.partners = same_pose_partners(data, frames)

    def __call__(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        cfg, data, unwrapped = self.cfg, self.data, self.unwrapped
        sel = batch[:, 0]
        rows, cams = self.pairs[sel, 0], self.pairs[sel, 1]
        frames = self.frame_ids[rows]
        code, target = mixed_exposures(
            data, frames, lambda f, c: unwrapped.textures[unwrapped.row(f), c], cams, self.partners,
            cfg.pattern_mix, cfg.colour_augmentation, channel_dim=0,
        )  # fmt: skip
        device = self.textures.device
        code, target = code.to(device), target.to(device)
        head_view = head_view_vector(data.head_r[frames].to(device), data.view_vectors(frames, cams).to(device))
        texture = self.textures[sel].float()
        weight = unwrapped.weights[rows, cams].float().to(device)
        gain, bias = self.lighting(code, head_view, texture)
        norm = 3 * weight.sum(dim=(1, 2, 3)).clamp_min(1e-6)
        relit = relight(texture, gain, bias)
        per_sample = (weight * (relit - target).abs()).sum(dim=(1, 2, 3)) / norm
        level = None
        if cfg.relative_render_loss:
            level = (weight * target).sum(dim=(1, 2, 3)) / norm + 1e-3
            per_sample = per_sample / level
        terms = {"total": per_sample.mean()}
        add_terms(terms, self.extra, LightingBatch(WARMUP, self.lighting, frames, cams, code, head_view, texture,
                                                   gain, bias, relit, target, weight, level))  # fmt: skip
        return terms


def texture_warmup(
    lighting: LightingModel,
    dam: DAM,
    data: LightStageData,
    split: Split,
    codes: torch.Tensor,
    cfg: LightingTrainConfig,
    device: torch.device,
    renderer: MeshRenderer,
    progress: bool = True,
    extra: Sequence[LossTerm] = (),
) -> list[dict]:
    """Train `lighting` in texture space for `cfg.texture_warmup_epochs`; returns the loss (and rate) history:
    per epoch "texture_render" (the loss), "lr" and each of the `extra` terms (experiments/hook.py)."""
    start_time = time.time()
    frames = split.train_frames(data)
    cams = split.train_cameras(data)
    unwrapped = unwrap_frames(data, split, frames, dam.cfg.texture_size, device, renderer)
    pairs = torch.tensor([(i, c) for i in range(len(frames)) for c in cams])
    textures = decode_textures(dam, data, torch.tensor(frames), pairs, codes)
    optimiser = torch.optim.Adam(lighting.parameters(), lr=cfg.texture_warmup_lr)
    decay_every = cfg.texture_warmup_lr_decay_every or cfg.texture_warmup_epochs + 1
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=decay_every, gamma=cfg.lr_decay)
    for term in extra:
        term.prepare(data, frames, unwrapped)
    losses = WarmupLosses(lighting, data, frames, unwrapped, pairs, textures, cfg, extra)
    indices = torch.arange(len(pairs))[:, None]
    history: list[dict] = []
    bar = tqdm(range(cfg.texture_warmup_epochs), desc="G warm-up", disable=not progress)
    for _ in bar:
        means = run_epoch(indices, None, cfg.batch_size, losses, optimiser)
        history.append({"texture_render": means.pop("total"), **means, "lr": optimiser.param_groups[0]["lr"]})
        scheduler.step()
        bar.set_postfix(loss=f"{history[-1]['texture_render']:.4f}")
        limit = cfg.texture_warmup_minutes
        if limit is not None and time.time() - start_time > 60 * limit:
            log.warning("G warm-up: time limit of %s min reached after epoch %d", limit, len(history))
            break
    return history
