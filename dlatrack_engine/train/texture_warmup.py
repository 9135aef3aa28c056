"""Optional texture-space warm-up of G before the render-loss training of Eq. 4-5.

The same comparison as Eq. 4 — relit texture against the captured image — but made in UV space against
the unwrapped, visibility-weighted camera images, with the DAM's textures for each (frame, camera)
decoded once from the encoder's codes. No rasterisation per step, so on a CPU it runs ~10x more steps
per minute; the Eq. 4-5 stage that follows then refines G (and the codes and geometry) through the
renderer. Off by default (`texture_warmup_epochs = 0`): it is an engineering shortcut, not in the paper.
`texture_warmup_gain_only` fits the gain alone (Eq. 2 with b = 0; the bias branch is not trained and stays
at its zero initialisation), so that the warm-up cannot settle into a bias-only split (lighting_trainer.py);
otherwise gain and bias are fitted together under the same bias penalty (`lambda_bias`) as Eq. 4-5.
`lambda_shading_ratio` (off by default) adds the gain's distance to the true shading ratio where a pose
has a fully-lit training frame (train/shading_ratio.py).
`texture_warmup_lr_decay_every` (off by default) multiplies the warm-up's rate by `lr_decay` every N epochs.
"""

from __future__ import annotations

import logging
import time

import torch
from tqdm import tqdm

from dlatrack_engine.models.dam import DAM
from dlatrack_engine.models.lighting import LightingModel, head_view_vector, relight
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.dam_trainer import UnwrappedFrames, unwrap_frames
from dlatrack_engine.train.data import LightStageData, Split
from dlatrack_engine.train.pattern_mix import mixed_exposures, same_pose_partners
from dlatrack_engine.train.shading_ratio import fully_lit_rows, shading_ratio_residual
from dlatrack_engine.train.superposition import superposition_residual

log = logging.getLogger(__name__)


def bias_magnitude(bias: torch.Tensor, target_level: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean |b| [B] of a bias map [B,3,T,T], divided by `target_level` [B] (the relative render
    loss's normaliser) when given: the term that `lambda_bias` weights."""
    magnitude = bias.abs().mean(dim=(1, 2, 3))
    return magnitude if target_level is None else magnitude / target_level


def texture_warmup(
    lighting: LightingModel,
    dam: DAM,
    data: LightStageData,
    split: Split,
    codes: torch.Tensor,
    cfg,
    device: torch.device,
    renderer: MeshRenderer,
    progress: bool = True,
) -> list[dict]:
    """Train `lighting` in texture space for `cfg.texture_warmup_epochs`; returns the loss (and rate) history."""
    start_time = time.time()
    frames = split.train_frames(data)
    cams = split.train_cameras(data)
    unwrapped: UnwrappedFrames = unwrap_frames(data, split, frames, dam.cfg.texture_size, device, renderer)
    pairs = torch.tensor([(i, c) for i in range(len(frames)) for c in cams])
    frame_ids = torch.tensor(frames)
    with torch.no_grad():
        decoded = []
        for start in range(0, len(pairs), 16):
            rows, cc = pairs[start : start + 16, 0], pairs[start : start + 16, 1]
            view = data.view_vectors(frame_ids[rows], cc).to(device)
            decoded.append(dam.decode(codes[frame_ids[rows].to(device)], view)[1].half())
        textures = torch.cat(decoded)  # [P,3,T,T] in pair order
    gain_only = cfg.texture_warmup_gain_only
    params = [p for name, p in lighting.named_parameters() if not (gain_only and name.startswith("bias_branch."))]
    optimiser = torch.optim.Adam(params, lr=cfg.texture_warmup_lr)
    # Same step decay as Eq. 4-5's schedule (x lr_decay every N epochs) when asked; a constant rate ends noisy.
    decay_every = cfg.texture_warmup_lr_decay_every or cfg.texture_warmup_epochs + 1
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=decay_every, gamma=cfg.lr_decay)
    history: list[dict] = []
    bar = tqdm(range(cfg.texture_warmup_epochs), desc="G warm-up", disable=not progress)
    partners = same_pose_partners(data, frames)
    twins = fully_lit_rows(data, frames, unwrapped) if cfg.lambda_shading_ratio > 0 else None
    for _ in bar:
        order = torch.randperm(len(pairs))
        total = ratio_total = 0.0
        for start in range(0, len(order), cfg.batch_size):
            sel = order[start : start + cfg.batch_size]
            rows, cc = pairs[sel, 0], pairs[sel, 1]
            fids = frame_ids[rows]
            code, target = mixed_exposures(
                data, fids, lambda f, c: unwrapped.textures[unwrapped.row(f), c], cc, partners, cfg.pattern_mix,
                cfg.colour_augmentation, channel_dim=0,
            )  # fmt: skip
            code, target = code.to(device), target.to(device)
            view = data.view_vectors(fids, cc).to(device)
            head_view = head_view_vector(data.head_r[fids].to(device), view)
            texture = textures[sel].float()
            weight = unwrapped.weights[rows, cc].float().to(device)
            gain, bias = lighting(code, head_view, texture)
            if gain_only:
                bias = torch.zeros_like(bias)
            norm = 3 * weight.sum(dim=(1, 2, 3)).clamp_min(1e-6)
            relit = relight(texture, gain, bias)
            per_sample = (weight * (relit - target).abs()).sum(dim=(1, 2, 3)) / norm
            level = None
            if cfg.relative_render_loss:
                level = (weight * target).sum(dim=(1, 2, 3)) / norm + 1e-3
                per_sample = per_sample / level
            loss = per_sample.mean()
            if cfg.lambda_bias > 0 and not gain_only:
                loss = loss + cfg.lambda_bias * bias_magnitude(bias, level).mean()
            if cfg.lambda_superposition > 0:
                residual = superposition_residual(lighting, code, head_view, texture, relit, weight, level)
                loss = loss + cfg.lambda_superposition * residual.mean()
            if twins is not None:  # the gain against the true shading ratio (train/shading_ratio.py)
                twin = twins[rows]
                has_twin = (twin >= 0).float()[:, None, None, None]
                fully_lit = unwrapped.textures[twin.clamp_min(0), cc].float().to(device)
                fully_lit_weight = (unwrapped.weights[twin.clamp_min(0), cc].float() * has_twin).to(device)
                ratio = shading_ratio_residual(gain, target, weight, fully_lit, fully_lit_weight)
                loss = loss + cfg.lambda_shading_ratio * ratio.mean()
                ratio_total += float(ratio.detach().sum())
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            total += float(loss.detach()) * len(sel)
        history.append({"texture_render": total / len(pairs), "lr": optimiser.param_groups[0]["lr"]})
        if twins is not None:
            history[-1]["shading_ratio"] = ratio_total / len(pairs)
        scheduler.step()
        bar.set_postfix(loss=f"{history[-1]['texture_render']:.4f}")
        limit = cfg.texture_warmup_minutes
        if limit is not None and time.time() - start_time > 60 * limit:
            log.warning("G warm-up: time limit of %s min reached after epoch %d", limit, len(history))
            break
    return history
