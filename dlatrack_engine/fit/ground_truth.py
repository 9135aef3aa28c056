"""The registration state a perfect tracker would reach on a clip with ground truth (`gt.npz`): the true
head pose and the expression code whose mesh is the true mesh.

The fixed-point test, the registration diagnostics and the appearance ceiling start from here: an
objective whose minimum is not this state cannot be fixed by tuning (docs/method.md, "Registration
against the ground truth").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlatrack_engine.fit.camera_setup import resolve_intrinsics
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.geometry import matrix_to_axis_angle
from dlatrack_engine.video import read_clip

GT_TRACK_FIELDS = ("vertices", "head_R", "head_t")


def code_for_vertices(scene: FaceScene, vertices: torch.Tensor, iterations: int = 400) -> torch.Tensor:
    """z [N, Z] minimising ‖M̃(z) − vertices‖² through the DAM's geometry branch alone, from z = 0
    (vertices [N, V, 3], head frame). The texture plays no part: this is the code of the true mesh."""
    vertices = vertices.to(scene.device)
    z = torch.zeros(len(vertices), scene.avatar.dam.cfg.latent_size, device=scene.device, requires_grad=True)
    optimiser = torch.optim.Adam([z], lr=0.05)
    for _ in range(iterations):
        optimiser.zero_grad(set_to_none=True)
        loss = (scene.geometry(z) - vertices).pow(2).sum(-1).mean() * 1e6  # mm²: Adam's lr in useful units
        loss.backward()
        optimiser.step()
    return z.detach()


def truth_params(scene: FaceScene, head_R: np.ndarray, head_t: np.ndarray, vertices: np.ndarray) -> FrameParams:
    """FrameParams at the true pose (R [N, 3, 3] head -> camera, t [N, 3] metres) with z fitted to the
    true head-frame vertices [N, V, 3]."""
    R = torch.as_tensor(np.asarray(head_R), dtype=torch.float32, device=scene.device)
    t = torch.as_tensor(np.asarray(head_t), dtype=torch.float32, device=scene.device)
    z = code_for_vertices(scene, torch.as_tensor(np.asarray(vertices), dtype=torch.float32))
    return FrameParams(matrix_to_axis_angle(R), t, z)


def track_arrays(scene: FaceScene, params: FrameParams) -> dict[str, np.ndarray]:
    """The job folder's per-frame fields (vertices [N, V, 3], head_R, head_t) for `params`, the form
    `metrics.geometry.geometry_errors` compares with the truth."""
    with torch.no_grad():
        vertices = scene.geometry(params.z)
    return {"vertices": vertices.cpu().numpy(), "head_R": params.rotation().cpu().numpy(),
            "head_t": params.t.cpu().numpy()}


@dataclass
class GroundTruthClip:
    """A sample clip at the schedule's working size, its truth and the true registration state."""

    scene: FaceScene
    frames: torch.Tensor  # [N, h, w, 3] linear RGB at the working size
    gt: dict[str, np.ndarray]  # vertices, head_R, head_t of the chosen frames; K in the video's pixels
    truth: FrameParams


def load_ground_truth_clip(clip_dir: str | Path, avatar, work_size: int | None,
                           rows: list[int] | None = None) -> GroundTruthClip:
    """`clip_dir` holding frames/ and gt.npz (the sample clips' layout); `rows` picks frames (all if None).
    Frames are scaled and K set up as the pipeline does for steps 2-3."""
    clip_dir = Path(clip_dir)
    clip = read_clip(clip_dir / "frames", work_size=work_size)
    rows = list(range(len(clip.indices))) if rows is None else list(rows)
    K, _ = resolve_intrinsics(clip_dir / "frames", *clip.source_size)
    scene = FaceScene(avatar, torch.as_tensor(np.diag([clip.scale, clip.scale, 1.0]) @ K), *clip.size)
    with np.load(clip_dir / "gt.npz") as data:
        gt = {key: data[key][[clip.indices[r] for r in rows]] for key in GT_TRACK_FIELDS}
        gt["K"] = data["K"]
    frames = torch.from_numpy(np.ascontiguousarray(clip.frames[rows]))
    return GroundTruthClip(scene, frames, gt, truth_params(scene, gt["head_R"], gt["head_t"], gt["vertices"]))
