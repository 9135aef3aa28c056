"""A small valid avatar topology (an n x n vertex grid with UVs and 68 landmarks) for tests of formats and I/O."""

from __future__ import annotations

import numpy as np

from dlatrack_engine.avatar.format import Topology


def grid_topology(n: int = 6) -> Topology:
    """A gently curved n x n grid standing in for a face mesh; landmarks are random but valid barycentrics."""
    ys, xs = np.meshgrid(np.linspace(-0.1, 0.1, n), np.linspace(-0.1, 0.1, n), indexing="ij")
    neutral = np.stack([xs, ys, 0.05 * np.cos(xs * 10)], -1).reshape(-1, 3).astype(np.float32)
    uvs = np.stack([(xs + 0.1) / 0.2, (ys + 0.1) / 0.2], -1).reshape(-1, 2).astype(np.float32)
    faces = []
    for row in range(n - 1):
        for col in range(n - 1):
            a = row * n + col
            faces += [[a, a + 1, a + n], [a + 1, a + n + 1, a + n]]
    faces_array = np.asarray(faces, np.int32)
    rng = np.random.default_rng(0)
    bary = rng.random((68, 3)).astype(np.float32)
    return Topology(
        faces=faces_array,
        uv_faces=faces_array.copy(),
        uvs=uvs,
        neutral=neutral,
        landmark_faces=rng.integers(0, len(faces_array), 68).astype(np.int32),
        landmark_barycentrics=bary / bary.sum(1, keepdims=True),
    )
