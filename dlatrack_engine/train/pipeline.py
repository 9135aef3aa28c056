"""The training stages behind `dlatrack train` and the sample avatar: data in, avatar package out.

`run_dam_stage` writes a package holding the trained DAM and an identity (untrained) G, so the result of
every stage is a valid, loadable avatar; `run_lighting_stage` reads that package, trains G and rewrites it;
`run_evaluation` measures the held-out quality and stores it in the package's provenance. The data split
is chosen once by the DAM stage and stored in avatar.json, so later stages hold out exactly the same data.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

import dlatrack_engine
from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.models.dam import DAMConfig
from dlatrack_engine.models.lighting import LightingConfig, LightingModel
from dlatrack_engine.paths import REPO_ROOT, cache_dir
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.dam_trainer import DAMTrainConfig, train_dam
from dlatrack_engine.train.data import LightStageData, Split, load_lightstage, make_split
from dlatrack_engine.train.experiments.registry import Experiments
from dlatrack_engine.train.heldout_eval import evaluate_avatar
from dlatrack_engine.train.landmark_calibration import LandmarkEmbedding, calibrate_landmarks
from dlatrack_engine.train.lighting_trainer import LightingTrainConfig, train_lighting
from dlatrack_engine.train.unwrap import unwrap_full_frames

log = logging.getLogger(__name__)

# Sizes for the sample subject: small enough to train in minutes on two CPU cores. Every preset trains an
# energy-normalised G (models/lighting.py, LightingConfig's default; packages from before it load unchanged).
SAMPLE_DAM: dict[str, Any] = {"latent_size": 32, "mesh_hidden": 128, "base_grid": 8, "max_channels": 64}
SAMPLE_LIGHTING: dict[str, Any] = {
    "input_texture_size": 128,
    "mlp_width": 128,
    "light_channels": (128, 64, 64, 32, 32),
    "texture_channels": (16, 32, 64, 64),
    "branch_channels": 32,
    "bias_scale": 0.05,
    "energy_normalised": True,
}
# Smoke tests / CI: the smallest sizes that still exercise every layer.
TINY_DAM: dict[str, Any] = {"latent_size": 8, "mesh_hidden": 64, "base_grid": 4, "max_channels": 32, "min_channels": 8}
TINY_LIGHTING: dict[str, Any] = {
    "input_texture_size": 16,
    "mlp_width": 32,
    "light_channels": (32, 32, 16, 16, 16),
    "texture_channels": (8, 16, 16, 16),
    "branch_channels": 16,
    "energy_normalised": True,
}
# A real subject (the paper's sizes: ~7k vertices, 1024² texture, z = 256, G input 256²).
REAL_DAM: dict[str, Any] = {"latent_size": 256, "mesh_hidden": 256, "base_grid": 8, "max_channels": 256}
REAL_LIGHTING: dict[str, Any] = {"input_texture_size": 256, "energy_normalised": True}


def _relative(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def default_checkpoint_dir(out: Path) -> Path:
    return cache_dir() / "train" / Path(out).resolve().name


def _data_record(data: LightStageData, image_size: int | None) -> dict[str, Any]:
    return {
        "path": _relative(data.root),
        "frames": data.num_frames,
        "full_frames": len(data.full_frames()),
        "cameras": data.camera_names,
        "training_image_size": [data.width, data.height],
        "max_image_size": image_size,
        "frame_ids": data.frame_ids,
        "dataset_provenance": data.provenance,
    }


def _load(root: Path, image_size: int | None, first_frames: int | None) -> LightStageData:
    return load_lightstage(root, image_size, None if first_frames is None else list(range(first_frames)))


def _machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def run_dam_stage(
    data_root: Path,
    out: Path,
    texture_size: int,
    image_size: int | None,
    dam_sizes: dict[str, Any],
    lighting_sizes: dict[str, Any],
    train_cfg: DAMTrainConfig,
    device: torch.device,
    holdout_cameras: list[str] | None = None,
    holdout_every: int = 6,
    checkpoint_dir: Path | None = None,
    command: str = "",
    name: str = "avatar",
    data: LightStageData | None = None,
    first_frames: int | None = None,
) -> Path:
    """Train the DAM on `data_root` and write the package `out` (with an untrained identity G)."""
    data = data or _load(data_root, image_size, first_frames)
    split = make_split(data, holdout_cameras, holdout_every)
    model_cfg = DAMConfig(num_vertices=data.topology.num_vertices, texture_size=texture_size, **dam_sizes)
    dam, _, summary = train_dam(data, split, model_cfg, train_cfg, device, checkpoint_dir)
    lighting_cfg = LightingConfig(texture_size=texture_size, **_fit_input_size(lighting_sizes, texture_size))
    avatar = Avatar(dam.cpu(), LightingModel(lighting_cfg), data.topology, {"name": name})
    provenance = {
        "engine_version": dlatrack_engine.__version__,
        "machine": _machine(),
        "data": _data_record(data, image_size),
        "split": split.to_dict(),
        "stages": {"dam": {"command": command, **summary}, "lighting": "untrained (identity: gain 1, bias 0)"},
    }
    path = avatar.to_package(out, provenance, name)
    log.info("wrote %s (DAM trained, G untrained)", path)
    return path


def _fit_input_size(sizes: dict[str, Any], texture_size: int, explicit: int | None = None) -> dict[str, Any]:
    """A preset's G input size, capped at the texture size (the paper's 256 for a 1024 texture; a preset
    never upsamples). An `explicit` size is kept as asked: above the texture size it gives G a finer
    feature grid (input / 16) and its gain/bias maps are resampled down to the texture (models/lighting.py)."""
    sizes = dict(sizes)
    sizes["input_texture_size"] = explicit or min(int(sizes.get("input_texture_size", 256)), texture_size)
    return sizes


def _split_from(avatar: Avatar, where: Path) -> Split:
    record = avatar.config.get("provenance", {}).get("split")
    if not isinstance(record, dict):
        raise ValueError(f"{where}/avatar.json: provenance.split is missing; run `dlatrack train dam` first")
    return Split(tuple(record["holdout_cameras"]), tuple(record["holdout_frame_ids"]))


def run_lighting_stage(
    data_root: Path,
    out: Path,
    image_size: int | None,
    lighting_sizes: dict[str, Any] | None,
    train_cfg: LightingTrainConfig,
    device: torch.device,
    checkpoint_dir: Path | None = None,
    command: str = "",
    data: LightStageData | None = None,
    first_frames: int | None = None,
    input_size: int | None = None,
    experiments: Experiments | None = None,
) -> Path:
    """Train G against the DAM stored in package `out` and rewrite `out` with it. `experiments` (not shipped;
    train/experiments/) add loss terms; their settings are recorded in the provenance."""
    avatar = Avatar.load(out, device)
    data = data or _load(data_root, image_size, first_frames)
    split = _split_from(avatar, out)
    texture_size = avatar.dam.cfg.texture_size
    if lighting_sizes is None:
        lighting_cfg = avatar.lighting.cfg
    else:
        sizes = _fit_input_size(lighting_sizes, texture_size, input_size)
        lighting_cfg = LightingConfig(texture_size=texture_size, **sizes)
    renderer = MeshRenderer(data.topology.faces, data.topology.uv_faces, data.topology.uvs, device)
    unwrapped = unwrap_full_frames(data, split, texture_size, device, renderer)
    experiments = experiments or Experiments()
    lighting, _, summary = train_lighting(
        avatar.dam, data, split, unwrapped, lighting_cfg, train_cfg, device, checkpoint_dir, extra=experiments.terms
    )
    avatar.lighting = lighting.eval()
    provenance = dict(avatar.config["provenance"])
    stages = dict(provenance.get("stages", {}))
    # The DAM's data record stays in provenance["data"]; G may be trained on another subset of the capture.
    stages["lighting"] = {"command": command, "data": _data_record(data, image_size), **summary}
    if experiments.settings:
        stages["lighting"]["experiments"] = experiments.settings
    provenance["stages"] = stages
    provenance["machine"] = _machine()
    path = avatar.to_package(out, provenance)
    log.info("wrote %s (DAM + trained G)", path)
    return path


def run_evaluation(
    data_root: Path,
    avatar_path: Path,
    image_size: int | None,
    device: torch.device,
    command: str = "",
    data: LightStageData | None = None,
    max_frames: int = 12,
    fit_iterations: int = 100,
    first_frames: int | None = None,
    adapt_quality: str | None = "fast",
) -> dict[str, list[dict]]:
    """Held-out metrics of the package at `avatar_path`; stored in its provenance under "evaluation".
    `adapt_quality` names registration's schedule preset whose step 2 adapts G to unseen patterns (None: skip)."""
    avatar = Avatar.load(avatar_path, device)
    data = data or _load(data_root, image_size, first_frames)
    split = _split_from(avatar, avatar_path)
    renderer = MeshRenderer(data.topology.faces, data.topology.uv_faces, data.topology.uvs, device)
    unwrapped = unwrap_full_frames(data, split, avatar.dam.cfg.texture_size, device, renderer)
    adaptation = Schedule.preset(adapt_quality).step2 if adapt_quality else None
    results = evaluate_avatar(avatar, data, split, unwrapped, max_frames, fit_iterations, adaptation)
    provenance = dict(avatar.config["provenance"])
    provenance["evaluation"] = {
        "command": command,
        "image_size": [data.width, data.height],
        "light_code_fit_iterations": fit_iterations,
        "adaptation": {"quality": adapt_quality, **dataclasses.asdict(adaptation)} if adaptation else None,
        "results": results,
    }
    avatar.to_package(avatar_path, provenance)
    return results


def train_config_from(cls: type, overrides: dict[str, Any]):
    """A training-config dataclass with the non-None `overrides` applied (CLI flags map onto fields)."""
    names = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in overrides.items() if v is not None and k in names})


def run_landmark_calibration(
    data_root: Path,
    avatar_path: Path,
    image_size: int | None,
    detector: Any,
    command: str = "",
    first_frames: int | None = None,
) -> dict:
    """Calibrate ℓ_i for `detector` (landmarks/ interface) on the package's training frames and cameras
    (fully lit) and store it in the package under landmarks.detector_embeddings; returns the report."""
    avatar = Avatar.load(avatar_path, "cpu")
    data = _load(data_root, image_size, first_frames)
    split = _split_from(avatar, avatar_path)
    topo = avatar.topology_arrays
    default = LandmarkEmbedding(topo.landmark_faces, topo.landmark_barycentrics)
    frames = split.train_frames(data, "full")
    with tqdm(total=len(frames) * data.num_cameras, desc="landmarks", unit="view") as bar:
        embedding = calibrate_landmarks(
            data, detector, frames, split.train_cameras(data), split.test_cameras(data), default,
            progress=lambda done, total: bar.update(done - bar.n),
        )  # fmt: skip
    embedding.report.update({"command": command, "data": _relative(data_root), "frames": len(frames)})
    landmarks = dict(avatar.config.get("landmarks", {}))
    landmarks["detector_embeddings"] = {**landmarks.get("detector_embeddings", {}), detector.name: embedding.to_dict()}
    avatar.config["landmarks"] = landmarks
    avatar.to_package(avatar_path)
    log.info("wrote %s (landmark embedding for %s)", avatar_path, detector.name)
    return embedding.report
