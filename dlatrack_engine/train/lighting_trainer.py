"""Training the lighting model G on light-stage data (PAPER.md §2, Eq. 4-5).

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

Bias penalty (`lambda_bias`, off by default; a departure from the paper, which states none): L gets
+ λ_bias · mean |b| (over the texture, divided by the same per-sample target intensity as the relative render
loss). Eq. 2 is ambiguous — G also sees T̂, so the bias map alone can reproduce any relit face. On the sample
light stage (single-group frames ~100x darker than the fully-lit ones) the first sample package (a plain G)
collapsed into g ≈ 1e-4 everywhere with b carrying the whole relit face: the dark frames drive the softplus
gain into its flat region, where it is stuck (models/lighting.py, `gain_activation`), and the bias takes
over. The energy-normalised G (models/lighting.py, the default for new training) removes the cause — its
gain no longer has to span two orders of magnitude — and keeps the split healthy without any penalty; this
penalty, the |1 + x| gain and the gain-only warm-up (train/texture_warmup.py) stay opt-in.

Superposition loss (`lambda_superposition`, off by default; not in the paper): L gets + λ_sup · mean
|T(l) − T(l_A) − T(l_B)| for a random split l = l_A + l_B of each sample's lit groups, relative like the
render loss (train/superposition.py). It asks G to be linear in the light, as light transport is; both the
warm-up and Eq. 4-5 use it when set.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm import tqdm

from dlatrack_engine.models.dam import DAM
from dlatrack_engine.models.lighting import LightingConfig, LightingModel, head_view_vector, relight
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.checkpoint import load_checkpoint
from dlatrack_engine.train.dam_trainer import UnwrappedFrames
from dlatrack_engine.train.data import LightStageData, Split, nearest_full_frame
from dlatrack_engine.train.loop import end_epoch, run_epoch, training_summary
from dlatrack_engine.train.pattern_mix import mixed_exposures, same_pose_partners
from dlatrack_engine.train.superposition import superposition_residual
from dlatrack_engine.train.texture_warmup import bias_magnitude, texture_warmup

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
    lambda_bias: float = 0.0  # L1 penalty on the bias map (not in the paper; see the module docstring)
    lambda_superposition: float = 0.0  # linearity of G in l (not in the paper; train/superposition.py)
    lambda_shading_ratio: float = 0.0  # warm-up gain vs the true shading ratio (not in the paper; shading_ratio.py)
    texture_warmup_epochs: int = 0  # optional texture-space warm-up of G (train/texture_warmup.py)
    texture_warmup_lr: float = 1e-3
    texture_warmup_minutes: float | None = None
    texture_warmup_lr_decay_every: int | None = None  # x lr_decay every N warm-up epochs (None: constant)
    texture_warmup_gain_only: bool = False  # warm-up fits the gain alone (b = 0; train/texture_warmup.py)
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
    G's inputs and outputs: "texture" T̂, "head_view" h_v, "bias" b and "relit" T, for the extra terms)."""
    device = z.device
    view = data.view_vectors(frames, cams).to(device)
    vertices, texture = dam.decode(z, view)
    head_view = head_view_vector(data.head_r[frames.cpu()].to(device), view)
    gain, bias = lighting(light_code, head_view, texture)
    relit = relight(texture, gain, bias)
    out = renderer.render(data.world_vertices(vertices, frames), data.camera(cams).to(device), relit)
    if with_inputs:
        return out.image, out.mask, vertices, {"texture": texture, "head_view": head_view, "bias": bias, "relit": relit}
    return out.image, out.mask, vertices


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
) -> dict[str, torch.Tensor]:
    """Eq. 4-5 for a batch of (frame, camera) pairs; `total` is L. With `augment`, colour augmentation and
    pattern mixing with the frames' same-pose `partners` (train/pattern_mix.py)."""
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
        "bias": bias_magnitude(g_io["bias"], level).mean(),
    }
    terms["total"] = terms["render"] + cfg.lambda_geo * terms["geo"] + cfg.lambda_reg * terms["reg"]  # Eq. 5
    terms["total"] = terms["total"] + cfg.lambda_bias * terms["bias"]  # bias penalty (not in the paper)
    if cfg.lambda_superposition > 0:
        terms["superposition"] = superposition_residual(
            lighting, light_code, g_io["head_view"], g_io["texture"], g_io["relit"], level=level
        ).mean()
        terms["total"] = terms["total"] + cfg.lambda_superposition * terms["superposition"]
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
) -> tuple[LightingModel, torch.Tensor, dict]:
    """Train G (and the per-frame codes) with the DAM frozen; resumes from `checkpoint_dir`.

    Returns G (eval mode), the optimised codes [N,Z] and a summary for the package provenance.
    """
    start_time = time.time()
    torch.manual_seed(cfg.seed)
    dam = dam.to(device).eval()
    dam.requires_grad_(False)
    renderer = MeshRenderer(data.topology.faces, data.topology.uv_faces, data.topology.uvs, device)
    lighting = LightingModel(model_cfg).to(device)
    codes = torch.nn.Parameter(initial_codes(dam, data, unwrapped, device))
    optimiser = torch.optim.Adam([*lighting.parameters(), codes], lr=cfg.lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=cfg.lr_decay_every, gamma=cfg.lr_decay)
    frames = split.train_frames(data)
    cams = split.train_cameras(data)
    if not frames or not cams:
        raise ValueError(f"{data.root}: the split leaves no training frames ({len(frames)}) or cameras ({len(cams)})")
    pairs = torch.tensor([(f, c) for f in frames for c in cams])
    partners = same_pose_partners(data, frames)
    log.info("pattern mixing: %d of %d training frames have same-pose partners", len(partners), len(frames))
    full_config = {"model": model_cfg.to_dict(), "train": cfg.to_dict(), "split": split.to_dict()}
    first_epoch, history = 0, []
    if checkpoint_dir is not None:
        state = load_checkpoint(checkpoint_dir, "lighting", full_config)
        if state is not None:
            lighting.load_state_dict(state["model"])
            with torch.no_grad():
                codes.copy_(state["codes"])
            optimiser.load_state_dict(state["optimiser"])
            scheduler.load_state_dict(state["scheduler"])
            first_epoch, history = int(state["epoch"]), list(state["history"])
    lighting.train()
    warmup: list[dict] = []
    if cfg.texture_warmup_epochs > 0 and first_epoch == 0:
        warmup = texture_warmup(lighting, dam, data, split, codes.detach(), cfg, device, renderer, progress)
    bar = tqdm(range(first_epoch, cfg.epochs), desc="G", disable=not progress, initial=first_epoch, total=cfg.epochs)
    for epoch in bar:
        means = run_epoch(
            pairs,
            cfg.samples_per_epoch,
            cfg.batch_size,
            lambda f, c: lighting_losses(dam, lighting, renderer, data, codes, f, c, cfg, partners=partners),
            optimiser,
        )
        scheduler.step()
        history.append(means)
        bar.set_postfix(loss=f"{means['total']:.4f}", render=f"{means['render']:.4f}")
        done = epoch + 1

        def state(done: int = done) -> dict:
            return {
                "config": full_config,
                "epoch": done,
                "history": history,
                "model": lighting.state_dict(),
                "codes": codes.detach().cpu(),
                "optimiser": optimiser.state_dict(),
                "scheduler": scheduler.state_dict(),
            }

        if end_epoch(done, cfg, start_time, checkpoint_dir, "lighting", state, "G"):
            break
    lighting.eval()
    summary = training_summary(history, cfg, start_time, frames, [data.camera_names[c] for c in cams])
    summary["texture_warmup"] = {"epochs": len(warmup), "final_loss": warmup[-1] if warmup else None}
    log.info("G trained: %s", summary["final_losses"])
    return lighting, codes.detach(), summary
