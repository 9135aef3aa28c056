"""A detector's own landmark embedding ℓ_i (docs/method.md, Eq. 6), calibrated on the light stage.

Eq. 6 ties each detected landmark L_i to one fixed surface point ℓ_i of the mesh. Where a detector puts a
landmark need not be where the avatar's default ℓ_i lies: on the sample subject MediaPipe's jaw-contour
points sit 7-11 px (at 256 px) above the default embedding's, and step 1 turns that into a ~7° head pitch.

On the light stage the mesh, head pose and camera of every view are known, so ℓ_i can be chosen by Eq. 6
itself: the surface point whose projections best match the detector's L_i over all fully-lit views (mean
squared pixel distance). The search takes the best mesh vertex, then the best point of a barycentric grid on
the triangles around it. Contour points (the jaw), which a detector puts on the silhouette of each view,
get the fixed surface point that is closest on average, exactly what step 1 can use.

The same search, with each view weighted by its place among the view-yaw bins (`avatar/landmark_views.py`),
gives one ℓ_i per bin: where the detector puts each landmark on a head turned that way. A bin seen by fewer
than `MIN_VIEWS` views' worth of weight keeps the single embedding.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from dlatrack_engine.avatar.landmark_views import bin_weights, view_yaw
from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.landmarks.base import NUM_LANDMARKS, LandmarkDetector
from dlatrack_engine.render.camera import project
from dlatrack_engine.train.data import LightStageData

log = logging.getLogger(__name__)

MIN_VIEWS = 5  # views with a detection needed to calibrate at all
GRID = 8  # barycentric grid steps per triangle edge in the refinement
VIEW_BINS_DEG = (-60.0, -40.0, -20.0, 0.0, 20.0, 40.0, 60.0)  # view-yaw centres of the per-view ℓ_i


@dataclass
class ViewBins:
    """ℓ_i per view-yaw bin: yaw_deg [Bn], faces [Bn, 68], barycentrics [Bn, 68, 3]."""

    yaw_deg: np.ndarray
    faces: np.ndarray
    barycentrics: np.ndarray

    def to_dict(self) -> dict:
        return {
            "yaw_deg": [float(y) for y in self.yaw_deg],
            "faces": [[int(f) for f in row] for row in self.faces],
            "barycentrics": [[[round(float(b), 6) for b in bary] for bary in rows] for rows in self.barycentrics],
        }

    def weights(self, views: np.ndarray) -> np.ndarray:
        """[n, Bn] blend weights of head-frame view vectors [n, 3]."""
        return _view_bin_weights(views, self.yaw_deg)


def _view_bin_weights(views: np.ndarray, yaw_deg: np.ndarray | tuple[float, ...]) -> np.ndarray:
    """[n, Bn] blend weights (avatar/landmark_views.py) of head-frame view vectors [n, 3] for bin centres yaw_deg."""
    yaw = view_yaw(torch.as_tensor(views, dtype=torch.float64))
    return bin_weights(yaw, torch.as_tensor(np.radians(yaw_deg))).numpy()


@dataclass
class LandmarkEmbedding:
    """ℓ_i as barycentric points: faces [68] int, barycentrics [68, 3] (rows >= 0, summing to 1)."""

    faces: np.ndarray
    barycentrics: np.ndarray
    report: dict = field(default_factory=dict)
    view_bins: ViewBins | None = None

    def points(self, vertices: np.ndarray, mesh_faces: np.ndarray, views: np.ndarray | None = None) -> np.ndarray:
        """Landmark points of meshes `vertices` [N, V, 3] with triangles `mesh_faces` [F, 3] -> [N, 68, 3];
        with head-frame view vectors `views` [N, 3] and view bins, each mesh's blend of the bins' ℓ_i."""
        if views is None or self.view_bins is None:
            corners = vertices[:, mesh_faces[self.faces]]  # [N, 68, 3 corners, 3]
            return np.einsum("nlcd,lc->nld", corners, self.barycentrics)
        bins = self.view_bins
        corners = vertices[:, mesh_faces[bins.faces]]  # [N, Bn, 68, 3 corners, 3]
        per_bin = np.einsum("nblcd,blc->nbld", corners, bins.barycentrics)
        return np.einsum("nb,nbld->nld", bins.weights(views), per_bin)

    def to_dict(self) -> dict:
        entry = {
            "faces": [int(f) for f in self.faces],
            "barycentrics": [[round(float(b), 6) for b in row] for row in self.barycentrics],
            "calibration": self.report,
        }
        if self.view_bins is not None:
            entry["view_bins"] = self.view_bins.to_dict()
        return entry


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
    data: LightStageData, views: list[tuple[int, int]], detections: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 6's best fixed surface point per landmark for `detections` [n_views, 68, 2], one fit per column of
    `weights` [n_views, W] (each view's squared distance weighted by it; default one column, all views equal)
    -> (faces [W, 68], barycentrics [W, 68, 3]). The views are projected once for all the fits."""
    w = np.ones((len(views), 1)) if weights is None else weights
    w = w / w.sum(0, keepdims=True)
    mesh_faces = np.asarray(data.topology.faces)
    meshes = data.vertices[[f for f, _ in views]].double().numpy()  # [n, V, 3] head frame
    vertex_px = _project_views(data, views, meshes)  # [n, V, 2]
    grid = _barycentric_grid(GRID)
    faces = np.empty((w.shape[1], NUM_LANDMARKS), np.int64)
    bary = np.empty((w.shape[1], NUM_LANDMARKS, 3))
    for i in range(NUM_LANDMARKS):
        costs = w.T @ ((vertex_px - detections[:, i : i + 1]) ** 2).sum(-1)  # [W, V]
        for column, best in enumerate(np.argmin(costs, axis=1)):
            ring = np.flatnonzero((mesh_faces == best).any(1))
            points = np.einsum("pk,nfkd->nfpd", grid, meshes[:, mesh_faces[ring]])  # [n, ring, P, 3]
            n, r, p, _ = points.shape
            px = _project_views(data, views, points.reshape(n, r * p, 3)).reshape(n, r, p, 2)
            grid_cost = np.einsum("n,nrp->rp", w[:, column], ((px - detections[:, None, None, i]) ** 2).sum(-1))
            f, g = np.unravel_index(int(np.argmin(grid_cost)), grid_cost.shape)
            faces[column, i], bary[column, i] = ring[f], grid[g]
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


def _view_vectors(data: LightStageData, views: list[tuple[int, int]]) -> np.ndarray:
    """Head-frame unit vectors head -> camera [n, 3] of (frame, camera) views."""
    return data.view_vectors(torch.tensor([f for f, _ in views]), torch.tensor([c for _, c in views])).double().numpy()


def reprojection_px(
    data: LightStageData, embedding: LandmarkEmbedding, detections: dict[tuple[int, int], np.ndarray],
    per_view: bool = False,
) -> float | None:
    """Mean distance (px) between the detections and the projected embedding over the given views;
    `per_view`: with the embedding's view bins blended for each view, as step 1 uses them."""
    if not detections:
        return None
    views = list(detections)
    meshes = data.vertices[[f for f, _ in views]].double().numpy()
    directions = _view_vectors(data, views) if per_view else None
    px = _project_views(data, views, embedding.points(meshes, np.asarray(data.topology.faces), directions))
    return float(np.linalg.norm(px - np.stack([detections[v] for v in views]), axis=-1).mean())


def fit_embeddings(data: LightStageData, views: list[tuple[int, int]],
                   detections: np.ndarray) -> tuple[np.ndarray, np.ndarray, ViewBins]:
    """The single ℓ_i (all views equal) and ℓ_i per view-yaw bin (`VIEW_BINS_DEG`: each view weighted by its
    blend weight for the bin), in one `fit_embedding` pass -> (faces [68], barycentrics [68, 3], view bins). A
    bin with less than `MIN_VIEWS` views' worth of weight keeps the single ℓ_i."""
    weights = _view_bin_weights(_view_vectors(data, views), VIEW_BINS_DEG)  # [n, Bn]
    faces, bary = fit_embedding(data, views, detections, np.column_stack([np.ones(len(views)), weights]))
    seen = np.concatenate([[True], weights.sum(0) >= MIN_VIEWS])
    faces, bary = np.where(seen[:, None], faces, faces[0]), np.where(seen[:, None, None], bary, bary[0])
    return faces[0], bary[0], ViewBins(np.array(VIEW_BINS_DEG), faces[1:], bary[1:])


def calibrate_landmarks(
    data: LightStageData,
    detector: LandmarkDetector,
    frames: list[int],
    fit_cameras: list[int],
    test_cameras: list[int],
    default: LandmarkEmbedding,
    progress: Callable[[int, int], None] | None = None,
) -> LandmarkEmbedding:
    """ℓ_i for `detector` from `frames` seen by `fit_cameras`, single and per view bin; `report` holds the mean
    distance (px at the data's image size) between detections and the projected embedding, default vs
    calibrated (single, and per view), on the fitting cameras and on `test_cameras` (never used for the fit)."""
    views = [(f, c) for f in frames for c in fit_cameras + test_cameras]
    found = detect_views(data, detector, views, progress)
    fit = {v: p for v, p in found.items() if v[1] in fit_cameras}
    test = {v: p for v, p in found.items() if v[1] in test_cameras}
    if len(fit) < MIN_VIEWS:
        raise ValueError(
            f"{data.root}: {detector.name} found a face in {len(fit)} of the fitting views; at least {MIN_VIEWS} "
            "are needed to calibrate the landmark embedding"
        )
    faces, bary, bins = fit_embeddings(data, list(fit), np.stack(list(fit.values())))
    calibrated = LandmarkEmbedding(faces, bary, view_bins=bins)
    residual = {
        name: {"default": reprojection_px(data, default, seen), "calibrated": reprojection_px(data, calibrated, seen),
               "calibrated_per_view": reprojection_px(data, calibrated, seen, per_view=True)}
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
