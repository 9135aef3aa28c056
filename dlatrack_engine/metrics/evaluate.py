"""Evaluate a finished job folder: re-render each tracked frame with the job's adapted lighting and compare
it with the input frame (Table 1's L2, SSIM, PSNR, CSIM), and, on synthetic clips with `gt.npz`, the
ground-truth errors (vertex, landmark, head pose, jitter).

The face region is method-independent: the clip's face masks when it ships them (synthetic clips), else the
convex hull of the detected input landmarks; so every method is scored on the same pixels.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from dlatrack_engine.fit import lighting_store
from dlatrack_engine.fit.lighting import VideoLighting
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.landmarks import LandmarkTrack
from dlatrack_engine.metrics import geometry, image
from dlatrack_engine.video import read_clip
from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError

log = logging.getLogger(__name__)
IMAGE_METRICS = ("l2", "ssim", "psnr", "csim")


def _clip_root(video: Path) -> Path:
    return video.parent if video.is_file() or video.name == "frames" else video


def _face_masks(root: Path, indices: list[int], marks: LandmarkTrack, height: int, width: int) -> list[np.ndarray]:
    masks = []
    for row, index in enumerate(indices):
        path = root / "masks" / f"{index:06d}.png"
        if path.exists():
            m = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
            if m is None or m.shape != (height, width):
                raise ValueError(f"'{path}': face mask unreadable or not {width}x{height}")
            masks.append((m > 127).astype(np.float32))
        else:
            masks.append(image.landmark_hull_mask(marks.points[row], height, width))
    return masks


def load_job_lighting(folder: JobFolder, avatar, scene: FaceScene) -> VideoLighting | None:
    """The job's adapted lighting (None when it has none: a landmark-only job)."""
    stored = lighting_store.read_job(folder)
    return None if stored is None else stored.video_lighting(avatar, scene.renderer)


def evaluate_job(job_dir: str | Path, avatar, csim: bool = True, batch: int = 8) -> dict[str, float]:
    """Mean metrics over the job's frames (keys: l2, ssim, psnr, [csim], and the GT errors when available)."""
    folder = JobFolder(job_dir)
    manifest = folder.read_manifest()
    done = folder.frames_done()
    indices = [i for i in manifest["frames"] if i in set(done)]
    if not indices:
        raise JobFolderError(f"{folder.root}: no tracked frame to evaluate")
    video = Path(manifest["video"])
    opts = manifest.get("options", {})
    clip = read_clip(video, opts.get("start", 0), opts.get("stop"), opts.get("stride", 1))
    rows = [clip.indices.index(i) for i in indices]
    width, height = clip.size
    scene = FaceScene(avatar, torch.as_tensor(manifest["K"]), width, height)
    lighting = load_job_lighting(folder, avatar, scene)
    track = folder.read_track(indices)
    params = FrameParams(torch.as_tensor(track["r"], device=avatar.device),
                         torch.as_tensor(track["head_t"], device=avatar.device),
                         torch.as_tensor(track["z"], device=avatar.device))
    marks = LandmarkTrack.load(str(folder.root / "landmarks.npz"))
    all_rows = {i: r for r, i in enumerate(manifest["frames"])}
    picked = [all_rows[i] for i in indices]
    marks = LandmarkTrack(marks.points[picked], marks.confidence[picked], marks.detected[picked], marks.detector)
    root = _clip_root(video)
    masks = _face_masks(root, indices, marks, height, width)
    per_frame: dict[str, list[float]] = {k: [] for k in IMAGE_METRICS if csim or k != "csim"}
    for first in range(0, len(indices), batch):
        sel = list(range(first, min(first + batch, len(indices))))
        with torch.no_grad():
            out = scene.render(params.select(sel), lighting)
        for j, k in enumerate(sel):
            frame = clip.frames[rows[k]]
            render = out.image[j].cpu().numpy()
            per_frame["l2"].append(image.l2_error(render, frame, masks[k]))
            per_frame["psnr"].append(image.psnr(render, frame, masks[k]))
            per_frame["ssim"].append(image.ssim(render, frame, masks[k]))
            if csim:
                from dlatrack_engine.metrics.identity import csim as csim_fn
                from dlatrack_engine.metrics.identity import landmark_box

                m = out.mask[j].cpu().numpy()
                composite = frame * (1 - m) + render * m
                per_frame["csim"].append(csim_fn(composite, frame, landmark_box(marks.points[k], width, height)))
    result = {k: float(np.mean(v)) for k, v in per_frame.items()}
    gt_path = root / "gt.npz"
    if gt_path.exists():
        result.update(_gt_errors(gt_path, indices, track, avatar))
    folder.update_manifest(metrics={**manifest.get("metrics", {}), "eval": result})
    return result


def _gt_errors(gt_path: Path, indices: list[int], track: dict, avatar) -> dict[str, float]:
    with np.load(gt_path) as data:
        gt = {k: data[k] for k in data.files}
    need = ("vertices", "head_R", "head_t", "K")
    missing = [k for k in need if k not in gt]
    if missing:
        raise ValueError(f"'{gt_path}': fields {missing} missing (expected {list(need)})")
    gt_sel = {"vertices": gt["vertices"][indices], "head_R": gt["head_R"][indices], "head_t": gt["head_t"][indices],
              "K": gt["K"]}
    if gt_sel["vertices"].shape[1:] != track["vertices"].shape[1:]:
        log.warning("'%s': GT mesh %s differs from the avatar's %s; skipping geometry errors", gt_path,
                    gt_sel["vertices"].shape[1:], track["vertices"].shape[1:])
        return {}
    faces = avatar.topology.faces.cpu().numpy()[avatar.topology.landmark_faces.cpu().numpy()]
    bary = avatar.topology.landmark_barycentrics.cpu().numpy()

    def landmarks_fn(vertices: np.ndarray) -> np.ndarray:
        return np.einsum("nlcd,lc->nld", vertices[:, faces], bary)

    return geometry.geometry_errors(track, gt_sel, landmarks_fn)
