"""Training the lighting model G on light-stage data (docs/method.md, Eq. 4-5).

The DAM is frozen; G's weights φ and one expression code z_t per frame are optimised:

    L_render = Σ_{t,v} ‖(I_t^v − R(T_t^v, M̂_t)) ⊙ m^v‖_1                          (Eq. 4)
    L = L_render + λ_geo Σ_t ‖M_t − M̂_t‖² + λ_reg ‖Z‖²                            (Eq. 5)

with T_t^v = T̂ ⊙ g + b (Eq. 2), g, b = G(l_t, h_v, T̂) (Eq. 3), (M̂_t, T̂) = D(z_t, v_v) (Eq. 1), R the
differentiable renderer and m^v the foreground mask. Each term is a mean (per masked pixel and channel,
per vertex coordinate in the DAM's normalised units, per latent dimension) so that the paper's λ values
keep a sensible balance at any image, mesh or latent size.

Relative render loss (`relative_render_loss`, on by default): each (t, v) term of Eq. 4 is divided by the
mean intensity of its masked target. Light-stage frames span two orders of magnitude (one group of 50 vs
all groups), and an absolute L1 would let the fully-lit frames drown out every lighting pattern; the paper
does not say how its HDR frames are weighted.

Colour augmentation and pattern mixing (train/pattern_mix.py): a sample's exposure gets a random RGB scale
s; the image is multiplied by s and the code's RGB entries too (the dataset stores the sum over a pattern's
lit groups, not each group, so one s per captured pattern is what stays exactly consistent). Other training
patterns captured in the same pose are added to it, each with its own s (`pattern_mix`, the chance of adding
each): light is linear, so the sum is an exact image of a new pattern. An energy-normalised G reproduces a
single pattern's scaling by construction, so for it the colour scale alone changes only the loss weighting;
mixed patterns are new codes, and they are what makes G generalise to combinations it has not seen.

The history's "bias" is the mean |b| (relative like the render loss): a monitor of Eq. 2's gain/bias split,
which Eq. 2 alone does not fix (G also sees T̂). It is not minimised; experiments that add terms to L (a bias
penalty among them) plug in through train/experiments/hook.py.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from dlatrack_engine.models.dam import DAM
from dlatrack_engine.models.lighting import LightingConfig, LightingModel, head_view_vector, relight
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.data import LightStageData, Split, nearest_full_frame
from dlatrack_engine.train.experiments.hook import RENDER, LightingBatch, LossTerm, add_terms
from dlatrack_engine.train.loop import Stage, train_epochs, training_summary
from dlatrack_engine.train.pattern_mix import mixed_exposures, same_pose_partners
from dlatrack_engine.train.texture_warmup import texture_warmup
from dlatrack_engine.train.unwrap import UnwrappedFrames

log = logging.getLogger(__name__)


@dataclass
class LightingTrainConfig:
    """Schedule of Eq. 4-5; defaults are the paper's values where it gives them."""

    epochs: int = 30
    batch_size: int = 4
    lr: float = 1e-3
    lr_decay: float = 0.25
    lr_decay_every: int = 10
    lambda_geo: float = 1.0
    lambda_reg: float = 0.1
    colour_augmentation: tuple[float, float] = (0.6, 1.4)
    pattern_mix: float = 0.5  # chance of adding each same-pose training pattern to a sample (pattern_mix.py)
    relative_render_loss: bool = True
    texture_warmup_epochs: int = 0  # texture-space warm-up of G (train/texture_warmup.py; the sample uses 120)
    texture_warmup_lr: float = 1e-3
    texture_warmup_minutes: float | None = None
    texture_warmup_lr_decay_every: int | None = None  # x lr_decay every N warm-up epochs (None: constant)
    samples_per_epoch: int | None = None  # None: every (frame, camera) pair once; else a random subset
    time_limit_minutes: float | None = None  # stop after the epoch that crosses it (shared CPUs)
    checkpoint_every: int = 1
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@torch.no_grad()
def initial_codes(dam: DAM, data: LightStageData, unwrapped: UnwrappedFrames, device: torch.device) -> torch.Tensor:
    """z_t for every frame from the DAM encoder: the frame's mesh + the view-averaged texture of the nearest
    fully-lit frame (group frames have no fully-lit texture of their own). [N,Z] on `device`."""
    codes = []
    for start in range(0, data.num_frames, 16):
        frames = list(range(start, min(start + 16, data.num_frames)))
        rows = [unwrapped.row(nearest_full_frame(data, f)) for f in frames]
        mu, _ = dam.encode(data.vertices[frames].to(device), unwrapped.average[rows].to(device))
        codes.append(mu)
    return torch.cat(codes)


def render_relit(
    dam: DAM,
    lighting: LightingModel,
    renderer: MeshRenderer,
    data: LightStageData,
    z: torch.Tensor,
    frames: torch.Tensor,
    cams: torch.Tensor,
    light_code: torch.Tensor,
    with_inputs: bool = False,
) -> tuple:
    """Decode (Eq. 1), relight (Eq. 2-3) and render for (frame, camera) pairs:
    -> (image [B,H,W,3], coverage [B,H,W,1], decoded vertices [B,V,3]) (+ with `with_inputs`, a dict of
    G's inputs and outputs: "texture" T̂, "head_view" h_v, "gain" g, "bias" b and "relit" T)."""
    device = z.device
    view = data.view_vectors(frames, cams).to(device)
    vertices, texture = dam.decode(z, view)
    head_view = head_view_vector(data.head_r[frames.cpu()].to(device), view)
    gain, bias = lighting(light_code, head_view, texture)
    relit = relight(texture, gain, bias)
    out = renderer.render(data.world_vertices(vertices, frames), data.camera(cams).to(device), relit)
    if with_inputs:
        g_io = {"texture": texture, "head_view": head_view, "gain": gain, "bias": bias, "relit": relit}
        return out.image, out.mask, vertices, g_io
    return out.image, out.mask, vertices


def bias_magnitude(bias: torch.Tensor, target_level: torch.Tensor | None) -> torch.Tensor:
    """Per-sample mean |b| [B] of a bias map [B,3,T,T], divided by `target_level` [B] (the relative render
    loss's normaliser) when given: the history's "bias" monitor."""
    magnitude = bias.abs().mean(dim=(1, 2, 3))
    return magnitude if target_level is None else magnitude / target_level


def lighting_losses(
    dam: DAM,
    lighting: LightingModel,
    renderer: MeshRenderer,
    data: LightStageData,
    codes: torch.Tensor,
    frames: torch.Tensor,
    cams: torch.Tensor,
    cfg: LightingTrainConfig,
    augment: bool = True,
    partners: dict[int, list[int]] | None = None,
    extra: Sequence[LossTerm] = (),
) -> dict[str, torch.Tensor]:
    """Eq. 4-5 for a batch of (frame, camera) pairs; `total` is L (plus any `extra` experiment terms). With
    `augment`, colour augmentation and pattern mixing with the frames' same-pose `partners` (pattern_mix.py)."""
    device = codes.device
    light_code, target = mixed_exposures(
        data, frames, lambda f, c: data.images[f, c], cams, partners or {}, cfg.pattern_mix,
        cfg.colour_augmentation if augment else None, channel_dim=-1,
    )  # fmt: skip
    light_code, target = light_code.to(device), target.to(device)
    z = codes[frames.to(device)]
    image, coverage, vertices, g_io = render_relit(
        dam, lighting, renderer, data, z, frames, cams, light_code, with_inputs=True
    )
    # m^v: the foreground the mesh covers (the capture's mask also holds hair, neck, ...: no gradient there).
    mask = data.masks[frames, cams].float().to(device) * (coverage.detach() > 0.5)
    tracked = data.vertices[frames].to(device)
    pixels = (3 * mask.sum(dim=(1, 2, 3))).clamp_min(1.0)
    per_sample = (mask * (image - target).abs()).sum(dim=(1, 2, 3)) / pixels
    level = None
    if cfg.relative_render_loss:
        level = (mask * target).sum(dim=(1, 2, 3)) / pixels + 1e-3
        per_sample = per_sample / level
    terms = {
        "render": per_sample.mean(),  # Eq. 4
        "geo": ((vertices - tracked) / dam.vertex_std).pow(2).mean(),
        "reg": z.pow(2).mean(),
        "bias": bias_magnitude(g_io["bias"], level).mean(),  # a monitor, not minimised
    }
    terms["total"] = terms["render"] + cfg.lambda_geo * terms["geo"] + cfg.lambda_reg * terms["reg"]  # Eq. 5
    if extra:
        batch = LightingBatch(RENDER, lighting, frames, cams, light_code, g_io["head_view"], g_io["texture"],
                              g_io["gain"], g_io["bias"], g_io["relit"], target, None, level)  # fmt: skip
        add_terms(terms, extra, batch)
    return terms


def train_lighting(
    dam: DAM,
    data: LightStageData,
    split: Split,
    unwrapped: UnwrappedFrames,
    model_cfg: LightingConfig,
    cfg: LightingTrainConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    extra: Sequence[LossTerm] = (),
) -> tuple[LightingModel, torch.Tensor, dict]:
    """Train G (and the per-frame codes) with the DAM frozen, after the texture-space warm-up when
    `cfg.texture_warmup_epochs` > 0; resumes from `checkpoint_dir`. `extra`: experiment terms (hook.py).

    Returns G (eval mode), the optimised codes [N,Z] and a summary for the package provenance.
    """
    start_time = time.time()
    torch.manual_seed(cfg.seed)
    dam = dam.to(device).eval()
    dam.requires_grad_(False)
    renderer = MeshRenderer(data.topology.faces, data.topology.uv_faces, data.topology.uvs, device)
    lighting = LightingModel(model_cfg).to(device)
    codes = torch.nn.Parameter(initial_codes(dam, data, unwrapped, device))
    frames, cams = split.train_frames(data), split.train_cameras(data)
    if not frames or not cams:
        raise ValueError(f"{data.root}: the split leaves no training frames ({len(frames)}) or cameras ({len(cams)})")
    partners = same_pose_partners(data, frames)
    log.info("pattern mixing: %d of %d training frames have same-pose partners", len(partners), len(frames))
    stage = _lighting_stage(lighting, codes, model_cfg, cfg, split, extra)
    warmup: list[dict] = []

    def warm_up() -> None:
        warmup.extend(texture_warmup(lighting, dam, data, split, codes.detach(), cfg, device, renderer, progress,
                                     extra))  # fmt: skip

    def losses(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return lighting_losses(dam, lighting, renderer, data, codes, batch[:, 0], batch[:, 1], cfg, True, partners,
                               extra)  # fmt: skip

    lighting.train()
    pairs = torch.tensor([(f, c) for f in frames for c in cams])
    history = train_epochs(stage, cfg, pairs, losses, start_time, checkpoint_dir, progress,
                           before_first_epoch=warm_up if cfg.texture_warmup_epochs > 0 else None)  # fmt: skip
    lighting.eval()
    summary = training_summary(history, cfg, start_time, frames, [data.camera_names[c] for c in cams])
    summary["texture_warmup"] = {"epochs": len(warmup), "final_loss": warmup[-1] if warmup else None}
    log.info("G trained: %s", summary["final_losses"])
    return lighting, codes.detach(), summary


def _lighting_stage(
    lighting: LightingModel,
    codes: torch.nn.Parameter,
    model_cfg: LightingConfig,
    cfg: LightingTrainConfig,
    split: Split,
    extra: Sequence[LossTerm],
) -> Stage:
    """G and the codes as the shared training loop sees them (Adam, step decay; checkpointed together)."""
    optimiser = torch.optim.Adam([*lighting.parameters(), codes], lr=cfg.lr)
    config = {"model": model_cfg.to_dict(), "train": cfg.to_dict(), "split": split.to_dict()}
    if extra:  # experiments change the run: a checkpoint of another set of them must not be resumed
        config["experiments"] = {term.name: term.weight for term in extra}

    def restore(state: dict) -> None:
        lighting.load_state_dict(state["model"])
        with torch.no_grad():
            codes.copy_(state["codes"])

    return Stage(
        name="lighting",
        desc="G",
        config=config,
        optimiser=optimiser,
        scheduler=torch.optim.lr_scheduler.StepLR(optimiser, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay),
        model_state=lambda: {"model": lighting.state_dict(), "codes": codes.detach().cpu()},
        restore=restore,
        postfix=lambda m: {"loss": f"{m['total']:.4f}", "render": f"{m['render']:.4f}"},
    )
