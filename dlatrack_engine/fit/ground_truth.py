"""The registration state a perfect tracker would reach on a clip with ground truth (`gt.npz`): the true
head pose and the expression code whose mesh is the true mesh.

The fixed-point test, the registration diagnostics and the appearance ceiling start from here: an
objective whose minimum is not this state cannot be fixed by tuning (docs/method.md, "Registration
against the ground truth").
"""

from __future__ import annotations

import numpy as np
import torch

from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.geometry import matrix_to_axis_angle


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
