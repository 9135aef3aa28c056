"""A small numpy z-buffer rasteriser for checking and unwrapping the sample data (no gradients).

The validation must not lean on the engine's differentiable renderer (that would let one bug hide another),
and it runs without torch, so this is a separate, plain implementation: every triangle's pixel-centre
bounding box is expanded into (triangle, pixel) pairs, an edge-function test keeps the covered ones and a
lexicographic sort by (pixel, depth) resolves visibility. Pixel (col i, row j) has its centre at
(i + 0.5, j + 0.5), as in conventions.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Raster:
    """Per pixel: nearest triangle (-1 = empty), its barycentrics and interpolated depth."""

    triangle: np.ndarray  # [H, W] int64
    barycentric: np.ndarray  # [H, W, 3] float64 (zeros where empty)
    depth: np.ndarray  # [H, W] float64 (inf where empty)

    @property
    def coverage(self) -> np.ndarray:
        return self.triangle >= 0


def rasterize(xy: np.ndarray, depth: np.ndarray, faces: np.ndarray, height: int, width: int) -> Raster:
    """Rasterise triangles with screen positions `xy [V, 2]` (pixels) and per-vertex `depth [V]`.

    Both windings are drawn (no culling); depth is interpolated linearly in screen space, which is exact
    enough for visibility on a mesh this fine.
    """
    tri_xy = xy[faces]  # [F, 3, 2]
    tri_z = depth[faces]
    valid = np.isfinite(tri_xy).all(axis=(1, 2)) & np.isfinite(tri_z).all(axis=1)
    x0 = np.ceil(tri_xy[..., 0].min(1) - 0.5).clip(0, width)
    x1 = np.floor(tri_xy[..., 0].max(1) - 0.5).clip(-1, width - 1)
    y0 = np.ceil(tri_xy[..., 1].min(1) - 0.5).clip(0, height)
    y1 = np.floor(tri_xy[..., 1].max(1) - 0.5).clip(-1, height - 1)
    bw = np.where(valid, np.maximum(x1 - x0 + 1, 0), 0).astype(np.int64)
    bh = np.where(valid, np.maximum(y1 - y0 + 1, 0), 0).astype(np.int64)
    counts = bw * bh
    tri_index = np.repeat(np.arange(len(faces)), counts)
    empty = Raster(np.full((height, width), -1), np.zeros((height, width, 3)), np.full((height, width), np.inf))
    if tri_index.size == 0:
        return empty
    local = np.arange(tri_index.size) - np.repeat(np.cumsum(counts) - counts, counts)
    px = x0[tri_index].astype(np.int64) + local % bw[tri_index]
    py = y0[tri_index].astype(np.int64) + local // bw[tri_index]
    cx, cy = px + 0.5, py + 0.5
    a, b, c = (tri_xy[tri_index, k] for k in range(3))
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    w0 = (b[:, 0] - cx) * (c[:, 1] - cy) - (c[:, 0] - cx) * (b[:, 1] - cy)
    w1 = (c[:, 0] - cx) * (a[:, 1] - cy) - (a[:, 0] - cx) * (c[:, 1] - cy)
    w2 = (a[:, 0] - cx) * (b[:, 1] - cy) - (b[:, 0] - cx) * (a[:, 1] - cy)
    with np.errstate(divide="ignore", invalid="ignore"):
        bary = np.stack([w0, w1, w2], axis=1) / area[:, None]
    inside = (np.abs(area) > 1e-12) & (bary >= -1e-9).all(axis=1)
    if not inside.any():
        return empty
    bary, tri_index, px, py = bary[inside], tri_index[inside], px[inside], py[inside]
    z = (bary * tri_z[tri_index]).sum(axis=1)
    pixel = py * width + px
    order = np.lexsort((z, pixel))
    first = order[np.r_[True, pixel[order][1:] != pixel[order][:-1]]]
    out = empty
    out.triangle.reshape(-1)[pixel[first]] = tri_index[first]
    out.barycentric.reshape(-1, 3)[pixel[first]] = bary[first]
    out.depth.reshape(-1)[pixel[first]] = z[first]
    return out


def project(points_world: np.ndarray, K: np.ndarray, R: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV projection: pixel positions `[N, 2]` and camera depth `[N]` of world points `[N, 3]`."""
    cam = points_world @ np.asarray(R).T + np.asarray(t)
    z = cam[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = (cam @ np.asarray(K).T)[:, :2] / z[:, None]
    return uv, z


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean masks (1.0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)
