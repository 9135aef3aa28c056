"""Evaluate a finished job folder: re-render each tracked frame with the job's adapted lighting and compare
it with the input frame (Table 1's L2, SSIM, PSNR, CSIM), and, on synthetic clips with `gt.npz`, the
ground-truth errors (vertex, landmark, head pose, jitter).

The face region is method-independent: the clip's face masks when it ships them (synthetic clips), else the
convex hull of the detected input landmarks; so every method is scored on the same pixels.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from dlatrack_engine.fit.video_lighting import lighting_at
from dlatrack_engine.metrics import geometry, image
from dlatrack_engine.report.job import LoadedJob, load_job

if TYPE_CHECKING:
    from dlatrack_engine.metrics.oracle import Oracle

log = logging.getLogger(__name__)
IMAGE_METRICS = ("l2", "ssim", "psnr", "csim")


@dataclass
class Evaluation:
    """Means (the table's cells) and the per-frame series they come from (the report's plots)."""

    frames: list[int]  # source frame indices
    means: dict[str, float]
    per_frame: dict[str, np.ndarray]  # name -> [N] (NaN where a value does not exist, e.g. no detection)
    lost_frames: list[int]
    oracle: Oracle | None = None  # the appearance ceiling, when asked for and the clip has gt.npz


def landmark_residual_px(job: LoadedJob) -> np.ndarray:
    """[N] mean distance (pixels, full size) between the detected landmarks and the tracked mesh's ℓ_i;
    NaN where the detector found no face."""
    with torch.no_grad():
        mesh = job.scene.landmarks_2d(job.params).cpu().numpy()
    residual = np.linalg.norm(mesh - job.marks.points, axis=-1).mean(axis=1)
    return np.where(job.marks.detected, residual, np.nan)


def score_renders(job: LoadedJob, params, lighting, csim: bool = False,
                  batch: int = 8) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-frame L2 / PSNR / SSIM [/ CSIM] of the avatar rendered at `params` (one row per tracked frame) with
    `lighting`, against the job's frames on its face masks; and the lighting's per-channel gain [N, 3].
    The tracked result and the appearance ceiling (metrics/oracle.py) are both scored here."""
    width, height = job.scene.width, job.scene.height
    per_frame: dict[str, list[float]] = {k: [] for k in IMAGE_METRICS if csim or k != "csim"}
    gains: list[np.ndarray] = []
    for first in range(0, len(job.indices), batch):
        sel = list(range(first, min(first + batch, len(job.indices))))
        with torch.no_grad():
            out = job.scene.render(params.select(sel), lighting_at(lighting, sel))  # l_t of these frames
        # What the adapted lighting does to the avatar, frame by frame: relit / fully lit texture, per channel.
        gains.append((out.relit_texture.mean(dim=(2, 3)) / out.texture.mean(dim=(2, 3)).clamp_min(1e-6)).cpu().numpy())
        for j, k in enumerate(sel):
            frame, render, mask = job.frames[k], out.image[j].cpu().numpy(), job.masks[k]
            per_frame["l2"].append(image.l2_error(render, frame, mask))
            per_frame["psnr"].append(image.psnr(render, frame, mask))
            per_frame["ssim"].append(image.ssim(render, frame, mask))
            if csim:
                from dlatrack_engine.metrics.identity import csim as csim_fn
                from dlatrack_engine.metrics.identity import landmark_box

                m = out.mask[j].cpu().numpy()
                composite = frame * (1 - m) + render * m
                per_frame["csim"].append(csim_fn(composite, frame, landmark_box(job.marks.points[k], width, height)))
    return {k: np.asarray(v, np.float64) for k, v in per_frame.items()}, np.concatenate(gains)


def evaluate(job_dir: str | Path, avatar, csim: bool = True, batch: int = 8, oracle: bool = False) -> Evaluation:
    """Per-frame and mean metrics of a job folder; the means are also stored in its manifest. `oracle` adds
    the appearance ceiling and what registration loses to it (metrics/oracle.py; clips with gt.npz only)."""
    job = load_job(job_dir, avatar)
    series, gains = score_renders(job, job.params, job.lighting, csim, batch)
    means = {k: float(np.mean(v)) for k, v in series.items()}
    series["landmark_residual_px"] = landmark_residual_px(job)
    series.update({f"lighting_gain_{c}": g for c, g in zip("rgb", gains.T, strict=True)})
    if job.gt is not None:
        errors = _gt_errors(job, avatar)
        means.update(errors[0])
        series.update(errors[1])
    ceiling = None
    if oracle and job.gt is not None:
        from dlatrack_engine.metrics.oracle import job_oracle, oracle_columns

        ceiling = job_oracle(job, avatar, batch=batch)
        means.update(oracle_columns(ceiling, means))
        series.update({f"oracle_{k}": np.asarray(v, np.float64) for k, v in ceiling.per_frame.items()})
    job.folder.update_manifest(metrics={**job.manifest.metrics, "eval": means})
    return Evaluation(job.indices, means, series, job.lost_frames, ceiling)


def evaluate_job(job_dir: str | Path, avatar, csim: bool = True, batch: int = 8) -> dict[str, float]:
    """Mean metrics over the job's frames (keys: l2, ssim, psnr, [csim], and the GT errors when available)."""
    return evaluate(job_dir, avatar, csim, batch).means


def _gt_errors(job: LoadedJob, avatar) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    gt, track = job.gt, job.track
    if gt["vertices"].shape[1:] != track["vertices"].shape[1:]:
        log.warning("'%s': GT mesh %s differs from the avatar's %s; skipping geometry errors", job.gt_path,
                    gt["vertices"].shape[1:], track["vertices"].shape[1:])
        return {}, {}
    faces = avatar.topology.faces.cpu().numpy()[avatar.topology.landmark_faces.cpu().numpy()]
    bary = avatar.topology.landmark_barycentrics.cpu().numpy()

    def landmarks_fn(vertices: np.ndarray) -> np.ndarray:
        return np.einsum("nlcd,lc->nld", vertices[:, faces], bary)

    return geometry.geometry_errors(track, gt, landmarks_fn), geometry.per_frame_errors(track, gt)
