"""render.camera's Blender conversions checked by Blender itself (bpy, in a subprocess)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dlatrack_engine.geometry import axis_angle_to_matrix
from dlatrack_engine.render.camera import (
    HEAD_TO_BLENDER,
    Camera,
    head_pose_to_blender_matrix,
    head_to_blender_points,
    intrinsics_to_blender,
    look_at,
    opencv_to_blender_camera,
    project,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from blender_runner import run_in_blender

pytestmark = pytest.mark.blender


def test_blender_projects_like_the_engine_and_places_the_head() -> None:
    W, H = 640, 480
    K = torch.tensor([[800.0, 0.0, 351.0], [0.0, 800.0, 228.5], [0.0, 0.0, 1.0]], dtype=torch.float64)
    R, t = look_at(torch.tensor([0.25, -0.1, 0.9], dtype=torch.float64), torch.zeros(3, dtype=torch.float64),
                   torch.tensor([0.0, -1.0, 0.0], dtype=torch.float64))
    cam = Camera(K, R, t, W, H)
    points = torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 0.08
    uv, depth = project(points[None], cam)
    intrinsics = intrinsics_to_blender(K, W, H)
    cases = []
    for world_to_blender in (None, HEAD_TO_BLENDER):
        M = opencv_to_blender_camera(R, t, world_to_blender)
        pts = points.numpy() if world_to_blender is None else points.numpy() @ HEAD_TO_BLENDER.T
        cases.append({**intrinsics, "matrix_world": M.tolist(), "points": pts.tolist()})
    r_head = axis_angle_to_matrix(torch.tensor([0.1, -0.3, 0.05], dtype=torch.float64)).numpy()
    t_head = np.array([0.01, 0.02, 0.55])
    head_points = points.numpy()
    result = run_in_blender(Path(__file__).with_name("bpy_camera_check.py"), {
        "width": W, "height": H, "cases": cases,
        "head_points_blender": head_to_blender_points(head_points).tolist(),
        "head_matrix": head_pose_to_blender_matrix(r_head, t_head).tolist(),
    }, timeout=180)
    expected = np.concatenate([uv[0].numpy(), depth[0].numpy()[:, None]], 1)
    for rows in result["projected"]:
        np.testing.assert_allclose(np.array(rows), expected, atol=1e-3)
    np.testing.assert_allclose(np.array(result["head_world"]), head_points @ r_head.T + t_head, atol=1e-5)
