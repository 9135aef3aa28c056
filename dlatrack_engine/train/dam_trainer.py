"""Training the DAM (Lombardi et al. 2018; docs/method.md, Eq. 1) on the fully-lit light-stage frames.

Targets are unwrapped per-camera textures (view-dependent) and the tracked meshes. Loss per sample:
    vertex L2 (normalised units) + visibility-weighted texture L1 (normalised units) + kl_weight · KL
  (+ screen_weight · masked image L1 of the decoded mesh+texture rendered through the differentiable
  renderer — optional, off by default because on a CPU it costs a render per sample).
Means, not sums, so the weights read the same at any mesh or texture size.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from dlatrack_engine.models.dam import DAM, DAMConfig, kl_divergence
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.data import LightStageData, Split
from dlatrack_engine.train.loop import Stage, train_epochs, training_summary
from dlatrack_engine.train.unwrap import UnwrappedFrames, average_texture, unwrap_full_frames

log = logging.getLogger(__name__)


@dataclass
class DAMTrainConfig:
    epochs: int = 200
    batch_size: int = 8
    lr: float = 1e-3
    kl_weight: float = 1e-3
    vertex_weight: float = 1.0
    texture_weight: float = 1.0
    screen_weight: float = 0.0
    # Clip each step's gradient norm (typical norms 1-10): at lr 2e-3, unclipped, a spike (norm ~70 then
    # ~1e4) sent a 25-frame sample run to inf at epoch 16.
    max_grad_norm: float | None = 5.0
    samples_per_epoch: int | None = None  # None: every (frame, camera) pair once; else a random subset
    time_limit_minutes: float | None = None  # stop after the epoch that crosses it (shared CPUs)
    checkpoint_every: int = 10
    seed: int = 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def normalisation_stats(
    data: LightStageData, unwrapped: UnwrappedFrames, frames: list[int]
) -> tuple[torch.Tensor, float, torch.Tensor, float]:
    """Mean mesh, global vertex std, mean texture, global texture std over the training frames."""
    verts = data.vertices[frames]
    mean_vertices = verts.mean(0)
    vertex_std = float((verts - mean_vertices).std()) if len(frames) > 1 else 1e-3
    rows = [unwrapped.row(f) for f in frames]
    tex = unwrapped.textures[rows].float().flatten(0, 1)
    w = unwrapped.weights[rows].float().flatten(0, 1)
    overall = (tex * w).sum() / (3 * w.sum()).clamp_min(1e-6)
    mean_texture = average_texture(tex, w, fallback=torch.full_like(tex[0], float(overall)))
    seen = (w > 0).expand_as(tex)
    texture_std = float((tex - mean_texture)[seen].std()) if bool(seen.any()) else 1.0
    return mean_vertices, max(vertex_std, 1e-5), mean_texture, max(texture_std, 1e-4)


def dam_losses(
    dam: DAM,
    data: LightStageData,
    unwrapped: UnwrappedFrames,
    frames: torch.Tensor,
    cams: torch.Tensor,
    cfg: DAMTrainConfig,
    device: torch.device,
    renderer: MeshRenderer | None = None,
    sample: bool = True,
) -> dict[str, torch.Tensor]:
    """The DAM loss terms for (frame, camera) pairs; `total` is their weighted sum."""
    rows = torch.tensor([unwrapped.row(int(f)) for f in frames])
    verts = data.vertices[frames].to(device)
    avg = unwrapped.average[rows].to(device)
    target = unwrapped.textures[rows, cams].float().to(device)
    weight = unwrapped.weights[rows, cams].float().to(device)
    view = data.view_vectors(frames, cams).to(device)
    out_v, out_t, mu, logvar = dam(verts, avg, view, sample=sample)
    terms = {
        "vertex": ((out_v - verts) / dam.vertex_std).pow(2).mean(),
        "texture": (weight * (out_t - target).abs()).sum() / (3 * weight.sum()).clamp_min(1e-6) / dam.texture_std,
        "kl": kl_divergence(mu, logvar),
    }
    total = cfg.vertex_weight * terms["vertex"] + cfg.texture_weight * terms["texture"] + cfg.kl_weight * terms["kl"]
    if cfg.screen_weight > 0 and renderer is not None:
        world = data.world_vertices(out_v, frames)
        out = renderer.render(world, data.camera(cams).to(device), out_t)
        image = data.images[frames, cams].float().to(device)
        mask = data.masks[frames, cams].float().to(device)
        terms["screen"] = (mask * (out.image - image).abs()).sum() / (3 * mask.sum()).clamp_min(1.0)
        total = total + cfg.screen_weight * terms["screen"]
    terms["total"] = total
    return terms


def train_dam(
    data: LightStageData,
    split: Split,
    model_cfg: DAMConfig,
    cfg: DAMTrainConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
) -> tuple[DAM, UnwrappedFrames, dict]:
    """Train a DAM; resumes from `checkpoint_dir` when it holds a checkpoint of the same configuration.

    Returns the trained model (eval mode), the unwrapped textures (evaluation reuses them) and a summary
    (epochs, final losses, seconds) for the package provenance.
    """
    start_time = time.time()
    torch.manual_seed(cfg.seed)
    renderer = MeshRenderer(data.topology.faces, data.topology.uv_faces, data.topology.uvs, device)
    unwrapped = unwrap_full_frames(data, split, model_cfg.texture_size, device, renderer)
    frames = split.train_frames(data, kind="full")
    cams = split.train_cameras(data)
    if not frames or not cams:
        raise ValueError(f"{data.root}: the split leaves no training frames ({len(frames)}) or cameras ({len(cams)})")
    dam = DAM(model_cfg).to(device)
    dam.set_normalisation(*normalisation_stats(data, unwrapped, frames))
    stage = Stage(
        name="dam",
        desc="DAM",
        config={"model": model_cfg.to_dict(), "train": cfg.to_dict(), "split": split.to_dict()},
        optimiser=torch.optim.Adam(dam.parameters(), lr=cfg.lr),
        model_state=lambda: {"model": dam.state_dict()},
        restore=lambda state: dam.load_state_dict(state["model"]),
        postfix=lambda m: {"loss": f"{m['total']:.4f}", "tex": f"{m['texture']:.3f}", "vert": f"{m['vertex']:.4f}"},
    )
    pairs = torch.tensor([(f, c) for f in frames for c in cams])

    def losses(batch: torch.Tensor) -> dict[str, torch.Tensor]:
        return dam_losses(dam, data, unwrapped, batch[:, 0], batch[:, 1], cfg, device, renderer)

    dam.train()
    history = train_epochs(stage, cfg, pairs, losses, start_time, checkpoint_dir, progress, cfg.max_grad_norm)
    dam.eval()
    summary = training_summary(history, cfg, start_time, frames, [data.camera_names[c] for c in cams])
    log.info("DAM trained: %s", summary["final_losses"])
    return dam, unwrapped, summary
