"""A detector's own landmark embedding ℓ_i (docs/method.md, Eq. 6), calibrated on the light stage.

Eq. 6 ties each detected landmark L_i to one fixed surface point ℓ_i of the mesh. Where a detector puts a
landmark need not be where the avatar's default ℓ_i lies: on the sample subject MediaPipe's jaw-contour
points sit 7-11 px (at 256 px) above the default embedding's, and step 1 turns that into a ~7° head pitch.

On the light stage the mesh, head pose and camera of every view are known, so ℓ_i can be chosen by Eq. 6
itself: the surface point whose projections best match the detector's L_i over all fully-lit views (mean
squared pixel distance). The search takes the best mesh vertex, then the best point of a barycentric grid on
the triangles around it. Contour points (the jaw), which a detector puts on the silhouette of each view,
get the fixed surface point that is closest on average, exactly what step 1 can use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.landmarks.base import NUM_LANDMARKS, LandmarkDetector
from dlatrack_engine.render.camera import project
from dlatrack_engine.train.data import LightStageData

log = logging.getLogger(__name__)

MIN_VIEWS = 5  # views with a detection needed to calibrate at all
GRID = 8  # barycentric grid steps per triangle edge in the refinement


@dataclass
class LandmarkEmbedding:
    """ℓ_i as barycentric points: faces [68] int, barycentrics [68, 3] (rows >= 0, summing to 1)."""

    faces: np.ndarray
    barycentrics: np.ndarray
    report: dict = field(default_factory=dict)

    def points(self, vertices: np.ndarray, mesh_faces: np.ndarray) -> np.ndarray:
        """Landmark points of meshes `vertices` [N, V, 3] with triangles `mesh_faces` [F, 3] -> [N, 68, 3]."""
        corners = vertices[:, mesh_faces[self.faces]]  # [N, 68, 3 corners, 3]
        return np.einsum("nlcd,lc->nld", corners, self.barycentrics)

    def to_dict(self) -> dict:
        return {
            "faces": [int(f) for f in self.faces],
            "barycentrics": [[round(float(b), 6) for b in row] for row in self.barycentrics],
            "calibration": self.report,
        }


def _barycentric_grid(steps: int) -> np.ndarray:
    """All (a, b, c) >= 0 with a + b + c = 1 on a grid of `steps` per edge -> [P, 3]."""
    rows = [(i, j, steps - i - j) for i in range(steps + 1) for j in range(steps + 1 - i)]
    return np.array(rows, np.float64) / steps


def _project_views(data: LightStageData, views: list[tuple[int, int]], head_points: np.ndarray) -> np.ndarray:
    """Pixels [n_views, P, 2] of head-frame points [n_views, P, 3] (one set per view's frame)."""
    frames = torch.tensor([f for f, _ in views])
    world = data.world_vertices(torch.as_tensor(head_points, dtype=torch.float32), frames)
    uv, _ = project(world, data.camera(torch.tensor([c for _, c in views])))
    return uv.double().numpy()


def fit_embedding(
    data: LightStageData, views: list[tuple[int, int]], detections: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 6's best fixed surface point per landmark for `detections` [n_views, 68, 2] -> (faces, barycentrics)."""
    mesh_faces = np.asarray(data.topology.faces)
    meshes = data.vertices[[f for f, _ in views]].double().numpy()  # [n, V, 3] head frame
    vertex_px = _project_views(data, views, meshes)  # [n, V, 2]
    grid = _barycentric_grid(GRID)
    faces = np.empty(NUM_LANDMARKS, np.int64)
    bary = np.empty((NUM_LANDMARKS, 3))
    for i in range(NUM_LANDMARKS):
        cost = ((vertex_px - detections[:, i : i + 1]) ** 2).sum(-1).mean(0)  # [V]
        best = int(np.argmin(cost))
        ring = np.flatnonzero((mesh_faces == best).any(1))
        points = np.einsum("pk,nfkd->nfpd", grid, meshes[:, mesh_faces[ring]])  # [n, ring, P, 3]
        n, r, p, _ = points.shape
        px = _project_views(data, views, points.reshape(n, r * p, 3)).reshape(n, r, p, 2)
        grid_cost = ((px - detections[:, None, None, i]) ** 2).sum(-1).mean(0)  # [ring, P]
        f, g = np.unravel_index(int(np.argmin(grid_cost)), grid_cost.shape)
        faces[i], bary[i] = ring[f], grid[g]
    return faces, bary


def detect_views(
    data: LightStageData,
    detector: LandmarkDetector,
    views: list[tuple[int, int]],
    progress: Callable[[int, int], None] | None = None,
) -> dict[tuple[int, int], np.ndarray]:
    """The detector's 68 points [68, 2] for each (frame, camera) view where it finds a face."""
    found: dict[tuple[int, int], np.ndarray] = {}
    for n, (frame, cam) in enumerate(views):
        result = detector.detect(linear_to_srgb8(data.images[frame, cam].float().numpy()))
        if result is not None:
            found[(frame, cam)] = np.asarray(result[0], np.float64)
        if progress is not None:
            progress(n + 1, len(views))
    return found


def reprojection_px(
    data: LightStageData, embedding: LandmarkEmbedding, detections: dict[tuple[int, int], np.ndarray]
) -> float | None:
    """Mean distance (px) between the detections and the projected embedding over the given views."""
    if not detections:
        return None
    views = list(detections)
    meshes = data.vertices[[f for f, _ in views]].double().numpy()
    px = _project_views(data, views, embedding.points(meshes, np.asarray(data.topology.faces)))
    return float(np.linalg.norm(px - np.stack([detections[v] for v in views]), axis=-1).mean())


def calibrate_landmarks(
    data: LightStageData,
    detector: LandmarkDetector,
    frames: list[int],
    fit_cameras: list[int],
    test_cameras: list[int],
    default: LandmarkEmbedding,
    progress: Callable[[int, int], None] | None = None,
) -> LandmarkEmbedding:
    """ℓ_i for `detector` from `frames` seen by `fit_cameras`; `report` holds the mean distance (px at the
    data's image size) between detections and the projected embedding, default vs calibrated, on the
    fitting cameras and on `test_cameras` (never used for the fit)."""
    views = [(f, c) for f in frames for c in fit_cameras + test_cameras]
    found = detect_views(data, detector, views, progress)
    fit = {v: p for v, p in found.items() if v[1] in fit_cameras}
    test = {v: p for v, p in found.items() if v[1] in test_cameras}
    if len(fit) < MIN_VIEWS:
        raise ValueError(
            f"{data.root}: {detector.name} found a face in {len(fit)} of the fitting views; at least {MIN_VIEWS} "
            "are needed to calibrate the landmark embedding"
        )
    faces, bary = fit_embedding(data, list(fit), np.stack(list(fit.values())))
    calibrated = LandmarkEmbedding(faces, bary)
    residual = {
        name: {"default": reprojection_px(data, default, seen), "calibrated": reprojection_px(data, calibrated, seen)}
        for name, seen in (("fit_cameras", fit), ("test_cameras", test))
    }
    calibrated.report = {
        "detector": detector.name,
        "views_detected": len(found),
        "views_total": len(views),
        "image_size": [data.width, data.height],
        "mean_error_px": residual,
    }
    log.info("landmark calibration for %s: %s", detector.name, residual)
    return calibrated
