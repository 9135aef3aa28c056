"""A flat grid mesh with UVs for the render tests (same tuple layout as `render.primitives.uv_sphere`)."""

from __future__ import annotations

import torch

from dlatrack_engine.render.primitives import Mesh, grid_faces


def grid(rows: int, cols: int, width: float = 1.0, height: float = 1.0) -> Mesh:
    """Flat rows x cols grid in the z = 0 plane facing +Z, centred at the origin; UVs span [0, 1]²."""
    ys = torch.linspace(height / 2.0, -height / 2.0, rows + 1)
    xs = torch.linspace(-width / 2.0, width / 2.0, cols + 1)
    Y, X = torch.meshgrid(ys, xs, indexing="ij")
    vertices = torch.stack([X, Y, torch.zeros_like(X)], -1).reshape(-1, 3)
    uvs = torch.stack([(X / width + 0.5), (Y / height + 0.5)], -1).reshape(-1, 2)
    faces = grid_faces(rows, cols)
    return vertices, faces, uvs, faces.clone()
