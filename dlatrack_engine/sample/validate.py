"""Checks that the rendered sample data is right (issue 3, item 5), independent of the engine's renderer.

- images are non-empty (the subject is lit where the mask says it is);
- each Cycles mask matches the projected ground-truth face mesh (IoU >= 0.95);
- the 50 light-group images add up to the fully-lit image (within Cycles noise);
- ground-truth landmarks project onto the face;
- wild clips: every frame present, ground truth shaped right, masks and landmarks agree with it;
- UV textures: the visibility weights are sane.
Each check records its numbers, so the report says how far from the threshold a dataset is.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..lightstage import format as fmt
from ..lightstage.reader import LightStageDataset
from .clips import clip_folders
from .raster import Raster, mask_iou, project, rasterize

log = logging.getLogger(__name__)
MIN_MASK_IOU = 0.95
MAX_GROUP_SUM_ERROR = 0.10  # relative, on 5x5-blurred images inside the mask (denoised vs raw Cycles noise)
MAX_GROUP_SUM_MEAN_ERROR = 0.03  # relative error of the mean over the mask
MIN_LANDMARKS_ON_FACE = 0.95  # of the landmarks the camera can see


@dataclass
class CheckResult:
    name: str
    passed: bool
    detail: str
    values: dict = field(default_factory=dict)


@dataclass
class ValidationReport:
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def add(self, name: str, passed: bool, detail: str, **values: float) -> None:
        self.checks.append(CheckResult(name, bool(passed), detail, values))
        (log.info if passed else log.error)("%s %s: %s", "PASS" if passed else "FAIL", name, detail)

    def to_json(self) -> dict:
        return {"passed": self.passed, "checks": [vars(c) for c in self.checks]}


def landmark_points(vertices: np.ndarray, topology: dict[str, np.ndarray]) -> np.ndarray:
    corners = vertices[topology["faces"][topology["landmark_faces"]]]  # [68, 3, 3]
    return np.einsum("lkc,lk->lc", corners, topology["landmark_barycentrics"])


def mesh_raster(vertices_world: np.ndarray, faces: np.ndarray, K, R, t, height: int, width: int) -> Raster:
    xy, depth = project(vertices_world, K, R, t)
    return rasterize(xy, depth, faces, height, width)


def visible_landmarks_on_mask(
    landmarks_world: np.ndarray, screen: Raster, mask: np.ndarray, K, R, t, margin: int = 2
) -> float:
    """Fraction of the landmarks the camera sees (not hidden behind the face itself) that land on the mask.

    Landmarks on the far side of a turned head are legitimately off the visible face, so they are left out
    by a z-test against the ground-truth mesh's own depth buffer.
    """
    xy, z = project(landmarks_world, K, R, t)
    h, w = mask.shape
    ix, iy = np.floor(xy[:, 0]).astype(int), np.floor(xy[:, 1]).astype(int)
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    visible = inside.copy()
    visible[inside] = z[inside] <= screen.depth[iy[inside], ix[inside]] + 0.004
    grown = cv2.dilate(mask.astype(np.uint8), np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)) > 0
    if not visible.any():
        return 0.0
    return float(grown[iy[visible], ix[visible]].mean())


def validate_lightstage(root: str | Path, report: ValidationReport) -> None:
    dataset = LightStageDataset(root)
    topo = dataset.topology
    faces = topo["faces"].astype(np.int64)
    shown = {g for f in dataset.frames for g in f.get("groups", [])}
    report.add(
        "lightstage.format", True,
        f"{dataset.root}: dataset.json valid, {len(dataset.frames)} frames, {len(shown)}/{fmt.NUM_LIGHT_GROUPS} "
        "light groups are lit in at least one pattern frame",
        groups_shown=len(shown),
    )  # fmt: skip
    ious, on_face, empty = [], [], []
    for frame_id in dataset.frame_ids():
        meta = dataset.meta(frame_id)
        world = meta["vertices"].astype(np.float64) @ meta["head_R"].T.astype(np.float64) + meta["head_t"]
        full = dataset.frame_info(frame_id)["kind"] == "full"
        for cam in dataset.cameras:
            image, mask = dataset.image(frame_id, cam.name), dataset.mask(frame_id, cam.name)
            lit = image[mask].mean() if mask.any() else 0.0
            if not np.isfinite(image).all() or (full and lit < 0.02) or (not full and image.max() <= 0):
                empty.append(f"frame {frame_id} {cam.name} (mean {lit:.4f})")
            if full:
                screen = mesh_raster(world, faces, cam.K, cam.R, cam.t, cam.height, cam.width)
                ious.append(mask_iou(mask, screen.coverage))
                lm = landmark_points(world, topo)
                on_face.append(visible_landmarks_on_mask(lm, screen, mask, cam.K, cam.R, cam.t))
    report.add("lightstage.images_non_empty", not empty, "all images lit" if not empty else f"empty: {empty[:5]}")
    report.add(
        "lightstage.mask_iou", min(ious) >= MIN_MASK_IOU,
        f"mask vs projected GT mesh IoU min {min(ious):.4f} mean {np.mean(ious):.4f} (need >= {MIN_MASK_IOU})",
        min=min(ious), mean=float(np.mean(ious)),
    )  # fmt: skip
    report.add(
        "lightstage.landmarks_on_face", min(on_face) >= MIN_LANDMARKS_ON_FACE,
        f"fraction of visible GT landmarks projecting onto the mask: min {min(on_face):.3f} "
        f"(need >= {MIN_LANDMARKS_ON_FACE})",
        min=min(on_face),
    )  # fmt: skip
    _check_group_sum(dataset, report)
    _check_uv(dataset, report)


def _check_group_sum(dataset: LightStageDataset, report: ValidationReport) -> None:
    """The first step's fully-lit image vs the sum of all 50 light-group passes of the same render."""
    first_full = dataset.frame_ids("full")[0]
    errors, mean_errors = [], []
    for cam in dataset.cameras:
        path = dataset.root / "checks" / f"{cam.name}_group_sum.png"
        png = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if png is None:
            report.add("lightstage.group_sum", False, f"{path}: missing (the generator writes it for step 0)")
            return
        group_sum = png[..., ::-1].astype(np.float64) * dataset.exposure_scale / 65535.0
        full = dataset.image(first_full, cam.name).astype(np.float64)
        mask = dataset.mask(first_full, cam.name)
        mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        blur_sum, blur_full = cv2.blur(group_sum, (5, 5)), cv2.blur(full, (5, 5))
        level = blur_full[mask].mean()
        errors.append(float(np.abs(blur_sum - blur_full)[mask].mean() / level))
        mean_errors.append(float(abs(group_sum[mask].mean() - full[mask].mean()) / full[mask].mean()))
    passed = max(errors) <= MAX_GROUP_SUM_ERROR and max(mean_errors) <= MAX_GROUP_SUM_MEAN_ERROR
    report.add(
        "lightstage.group_sum", passed,
        f"sum of 50 group images vs fully lit: blurred relative error max {max(errors):.4f} "
        f"(need <= {MAX_GROUP_SUM_ERROR}), mean-level error max {max(mean_errors):.4f} "
        f"(need <= {MAX_GROUP_SUM_MEAN_ERROR})",
        max_error=max(errors), max_mean_error=max(mean_errors),
    )  # fmt: skip


def _check_uv(dataset: LightStageDataset, report: ValidationReport) -> None:
    info = dataset.config.get("uv_textures")
    if not info:
        detail = f"{dataset.root}: no 'uv_textures' in dataset.json (unwrap not run)"
        report.add("lightstage.uv_textures", False, detail)
        return
    coverage = []
    for frame_id in info["frames"]:
        for cam in dataset.cameras:
            texture, weight = dataset.uv_texture(frame_id, cam.name)
            if texture.shape[:2] != (info["size"], info["size"]) or not np.isfinite(texture).all():
                report.add("lightstage.uv_textures", False, f"frame {frame_id} {cam.name}: bad texture {texture.shape}")
                return
            coverage.append(float((weight > 0).mean()))
    report.add(
        "lightstage.uv_textures", min(coverage) > 0.15,
        f"{len(coverage)} textures, seen fraction min {min(coverage):.3f} mean {np.mean(coverage):.3f} (need > 0.15)",
        min=min(coverage),
    )  # fmt: skip


def validate_clip(folder: str | Path, report: ValidationReport) -> None:
    folder = Path(folder)
    name = folder.name
    try:
        clip = json.loads((folder / "clip.json").read_text())
        gt = dict(np.load(folder / "gt.npz"))
        topo = dict(np.load(folder / "topology.npz"))
    except (OSError, ValueError) as error:
        report.add(f"clip.{name}", False, f"{folder}: cannot read clip.json / gt.npz / topology.npz ({error})")
        return
    n = int(clip["frame_count"])
    shapes_ok = (
        gt["head_R"].shape == (n, 3, 3) and gt["head_t"].shape == (n, 3) and gt["K"].shape == (3, 3)
        and gt["vertices"].shape == (n, *topo["neutral"].shape) and gt["expression"].shape[0] == n
    )  # fmt: skip
    frames = sorted((folder / "frames").glob("*.png"))
    video = folder / "video.mp4"
    ious, on_face, dark = [], [], 0
    faces = topo["faces"].astype(np.int64)
    for k, path in enumerate(frames[:n]):
        image = cv2.imread(str(path))
        mask = cv2.imread(str(folder / "masks" / path.name), cv2.IMREAD_GRAYSCALE) >= 128
        if image is None or image[mask].mean() < 3:
            dark += 1
        world = gt["vertices"][k].astype(np.float64)
        camera = (gt["K"], gt["head_R"][k], gt["head_t"][k])
        screen = mesh_raster(world, faces, *camera, *mask.shape)
        ious.append(mask_iou(mask, screen.coverage))
        on_face.append(visible_landmarks_on_mask(landmark_points(world, topo), screen, mask, *camera))
    passed = (
        shapes_ok and len(frames) == n and video.exists() and dark == 0
        and min(ious) >= MIN_MASK_IOU and min(on_face) >= MIN_LANDMARKS_ON_FACE
    )  # fmt: skip
    report.add(
        f"clip.{name}", passed,
        f"{len(frames)}/{n} frames, video {'ok' if video.exists() else 'missing'}, gt shapes "
        f"{'ok' if shapes_ok else 'WRONG'}, dark frames {dark}, mask IoU min {min(ious):.4f}, "
        f"landmarks on face min {min(on_face):.3f}",
        mask_iou_min=min(ious), landmarks_min=min(on_face),
    )  # fmt: skip


def validate_sample(root: str | Path, lightstage_expected: bool = True) -> ValidationReport:
    """Validate `<root>/lightstage` and every clip in `<root>/clips/*` and `<root>/varying/*`; writes
    `<root>/validation.json`. A missing light stage fails only when it was expected (not after
    `make-sample --skip-lightstage`)."""
    root = Path(root)
    report = ValidationReport()
    if (root / "lightstage" / fmt.DATASET_JSON).exists():
        validate_lightstage(root / "lightstage", report)
    elif lightstage_expected:
        report.add("lightstage", False, f"{root / 'lightstage'}: no dataset.json")
    for clip in clip_folders(root):
        validate_clip(clip, report)
    (root / "validation.json").write_text(json.dumps(report.to_json(), indent=1))
    return report
