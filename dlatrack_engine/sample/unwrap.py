"""DAM training data: each fully-lit frame and camera unwrapped into the subject's UV layout.

The DAM (docs/method.md, Eq. 1) learns a view-dependent texture T_v; its training targets are the capture's images
resampled into texture space, with a weight saying where the camera actually saw the surface. For every
texel: its surface point (from the UV rasterisation of the topology) is posed with the frame's ground-truth
mesh and head pose, projected into the camera, tested against the camera's z-buffer and the Cycles mask,
and the image is sampled bilinearly there. The weight is visibility times a ramp on the viewing angle, so
grazing, smeared texels count little.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from ..lightstage import format as fmt
from ..lightstage.reader import LightStageDataset
from ..lightstage.writer import encode_linear_png16, encode_mask_png
from ..wire.atomic import atomic_write_bytes
from .raster import Raster, project, rasterize

log = logging.getLogger(__name__)
DEPTH_TOLERANCE_M = 0.003


def uv_raster(uvs: np.ndarray, uv_faces: np.ndarray, size: int) -> Raster:
    """Which triangle (and where in it) each texel centre lies in; row 0 = v = 1 (conventions.md)."""
    xy = np.stack([uvs[:, 0] * size, (1.0 - uvs[:, 1]) * size], axis=1)
    return rasterize(xy, np.zeros(len(uvs)), uv_faces, size, size)


def texel_points(vertices: np.ndarray, faces: np.ndarray, texels: Raster) -> np.ndarray:
    """Surface point under every covered texel, `[N, 3]` in the order of `np.nonzero(texels.coverage)`."""
    covered = texels.coverage
    tri = texels.triangle[covered]
    return np.einsum("nk,nkc->nc", texels.barycentric[covered], vertices[faces[tri]])


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    tri = vertices[faces]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    out = np.zeros_like(vertices)
    for k in range(3):
        np.add.at(out, faces[:, k], normal)
    return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def unwrap_view(
    image: np.ndarray,
    mask: np.ndarray,
    vertices_world: np.ndarray,
    faces: np.ndarray,
    texels: Raster,
    K: np.ndarray,
    R: np.ndarray,
    t: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One camera's image resampled into UV space: texture `[T, T, 3]` and weight `[T, T]` in [0, 1]."""
    height, width = mask.shape
    size = texels.triangle.shape[0]
    xy, depth = project(vertices_world, K, R, t)
    screen = rasterize(xy, depth, faces, height, width)
    covered = texels.coverage
    points = texel_points(vertices_world, faces, texels)
    normals = texel_points(vertex_normals(vertices_world, faces), faces, texels)
    pxy, pz = project(points, K, R, t)
    centre = -np.asarray(R).T @ np.asarray(t)
    to_cam = centre - points
    cosine = np.einsum("nc,nc->n", normals, to_cam) / np.linalg.norm(to_cam, axis=1)
    ix = np.clip(np.floor(pxy[:, 0]).astype(int), 0, width - 1)
    iy = np.clip(np.floor(pxy[:, 1]).astype(int), 0, height - 1)
    inside = (pxy[:, 0] >= 0) & (pxy[:, 0] < width) & (pxy[:, 1] >= 0) & (pxy[:, 1] < height) & (pz > 0)
    seen = inside & (pz <= screen.depth[iy, ix] + DEPTH_TOLERANCE_M) & mask[iy, ix]
    weight = np.where(seen, np.clip((cosine - 0.1) / 0.3, 0.0, 1.0), 0.0)
    map_x = np.full((size, size), -1.0, np.float32)
    map_y = np.full((size, size), -1.0, np.float32)
    map_x[covered], map_y[covered] = pxy[:, 0] - 0.5, pxy[:, 1] - 0.5  # pixel centres at i + 0.5
    texture = cv2.remap(image.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    weight_map = np.zeros((size, size))
    weight_map[covered] = weight
    texture[weight_map <= 0] = 0.0
    return texture, weight_map


def unwrap_dataset(root: str | os.PathLike[str], size: int = 256) -> int:
    """Write `uv/<id>/<camera>.png` (+ `_vis.png`) for every fully-lit frame; returns textures written."""
    dataset = LightStageDataset(root)
    topo = dataset.topology
    texels = uv_raster(topo["uvs"], topo["uv_faces"], size)
    faces = topo["faces"].astype(np.int64)
    written = 0
    for frame_id in dataset.frame_ids("full"):
        meta = dataset.meta(frame_id)
        world = meta["vertices"].astype(np.float64) @ meta["head_R"].T.astype(np.float64) + meta["head_t"]
        for cam in dataset.cameras:
            image = dataset.image(frame_id, cam.name)
            mask = dataset.mask(frame_id, cam.name)
            texture, weight = unwrap_view(image, mask, world, faces, texels, cam.K, cam.R, cam.t)
            folder = Path(root) / fmt.uv_dir(frame_id)
            atomic_write_bytes(folder / f"{cam.name}.png", encode_linear_png16(texture, dataset.exposure_scale))
            atomic_write_bytes(folder / f"{cam.name}_vis.png", encode_mask_png(weight))
            written += 1
        log.info("unwrapped frame %d (%d cameras)", frame_id, len(dataset.cameras))
    config = dict(dataset.config)
    config["uv_textures"] = {"size": size, "frames": dataset.frame_ids("full"), "layout": "uv/<id:06d>/<camera>.png"}
    atomic_write_bytes(Path(root) / fmt.DATASET_JSON, json.dumps(config, indent=1).encode())
    return written
