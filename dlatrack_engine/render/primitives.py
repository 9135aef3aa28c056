"""A procedural UV sphere: the renderer benchmark's mesh (bench/bench_render.py), also used by the render tests.

It stays in the engine because the benchmark, not only the tests, renders it; the tests' other meshes live in
`tests/`. A mesh is (vertices [V, 3] float32, faces [F, 3] int32, uvs [U, 2] float32, uv_faces [F, 3] int32)
with counter-clockwise faces seen from outside and UVs in the Blender convention (v up).
"""

from __future__ import annotations

import math

import torch

Mesh = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def grid_faces(rows: int, cols: int) -> torch.Tensor:
    """Two triangles per cell of a (rows+1) x (cols+1) vertex grid laid out row-major (row 0 on top)."""
    idx = torch.arange((rows + 1) * (cols + 1)).reshape(rows + 1, cols + 1)
    a, b = idx[:-1, :-1].reshape(-1), idx[1:, :-1].reshape(-1)
    c, d = idx[1:, 1:].reshape(-1), idx[:-1, 1:].reshape(-1)
    return torch.cat([torch.stack([a, b, c], -1), torch.stack([a, c, d], -1)]).int()


def uv_sphere(rings: int = 16, segments: int = 32, radius: float = 1.0) -> Mesh:
    """Latitude/longitude sphere about the origin, poles on ±Y; shared vertices, separate UV seam column.

    Geometry uses one vertex per pole and wraps longitude (a closed mesh), while UVs use a full grid
    (u = longitude / 2π, v = 1 at the north pole), so `uv_faces` differs from `faces` at seams and poles.
    """
    if rings < 2 or segments < 3:
        raise ValueError(f"uv_sphere: need rings >= 2 and segments >= 3, got {rings}, {segments}")
    theta = torch.linspace(0.0, math.pi, rings + 1, dtype=torch.float64)
    phi = torch.linspace(0.0, 2.0 * math.pi, segments + 1, dtype=torch.float64)
    T, P = torch.meshgrid(theta, phi, indexing="ij")
    uvs = torch.stack([P / (2.0 * math.pi), 1.0 - T / math.pi], -1).reshape(-1, 2)
    uv_faces = grid_faces(rings, segments)
    # Geometry: north pole, (rings - 1) x segments ring vertices, south pole.
    inner = torch.stack(
        [torch.sin(T[1:-1, :-1]) * torch.cos(P[1:-1, :-1]), torch.cos(T[1:-1, :-1]),
         -torch.sin(T[1:-1, :-1]) * torch.sin(P[1:-1, :-1])], -1
    ).reshape(-1, 3)
    vertices = torch.cat([torch.tensor([[0.0, 1.0, 0.0]], dtype=torch.float64), inner,
                          torch.tensor([[0.0, -1.0, 0.0]], dtype=torch.float64)]) * radius
    south = vertices.shape[0] - 1

    def geo(r: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        s = s % segments
        return torch.where(r == 0, torch.zeros_like(s),
                           torch.where(r == rings, torch.full_like(s, south), 1 + (r - 1) * segments + s))

    uv_rows = torch.div(uv_faces.long(), segments + 1, rounding_mode="floor")
    uv_cols = uv_faces.long() % (segments + 1)
    faces = geo(uv_rows, uv_cols)
    # Drop the degenerate triangles at the poles (two corners on the same pole vertex).
    keep = (faces[:, 0] != faces[:, 1]) & (faces[:, 1] != faces[:, 2]) & (faces[:, 2] != faces[:, 0])
    return vertices.float(), faces[keep].int(), uvs.float(), uv_faces[keep].int()
