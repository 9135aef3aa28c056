"""A finished job folder made ready to look at: its frames at the clip's own size, the camera, the adapted
lighting, the tracked parameters, the detections and (on synthetic clips) the ground truth.

The evaluation and the preview both start here, so they score and draw exactly the same frames, masks
and renders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from dlatrack_engine.fit import lighting_store
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.landmarks import LandmarkTrack
from dlatrack_engine.metrics import image
from dlatrack_engine.video import read_clip
from dlatrack_engine.wire.clip_layout import clip_root
from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError
from dlatrack_engine.wire.manifest import Manifest


@dataclass
class LoadedJob:
    """The tracked frames of one job folder (row k of every array is source frame `indices[k]`)."""

    folder: JobFolder
    manifest: Manifest
    indices: list[int]  # source frame indices, tracked and selected
    frames: np.ndarray  # [N, H, W, 3] linear RGB at the clip's own size
    fps: float  # of the selected frames (the video's rate / stride)
    scene: FaceScene  # the video camera at the clip's own size
    lighting: VideoLighting | None
    params: FrameParams
    track: dict[str, np.ndarray]  # the job folder's per-frame fields (read_track)
    marks: LandmarkTrack  # detections of the tracked frames, in full-size pixels
    masks: list[np.ndarray]  # [H, W] float 0/1 face region per frame (method-independent)
    gt: dict[str, np.ndarray] | None  # vertices, head_R, head_t of the tracked frames, K; None without gt.npz
    gt_path: Path | None

    @property
    def lost_frames(self) -> list[int]:
        """Source frames without usable landmarks (no face found, or a detection dropped as off the head's path
        in time): tracking there rests on its neighbours only."""
        lost = {*(self.manifest.landmark_failed_frames or []), *(self.manifest.landmark_dropped_frames or [])}
        return sorted(int(i) for i in lost if i in set(self.indices))


def face_masks(root: Path, indices: list[int], marks: LandmarkTrack, height: int, width: int) -> list[np.ndarray]:
    """The clip's face masks when it ships them (synthetic clips), else the hull of the detected landmarks."""
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
    """The job's adapted (or reused) lighting through `fit/lighting_store.py`, the one lighting loader;
    None when it has none (a landmark-only job)."""
    stored = lighting_store.read_job(folder)
    return None if stored is None else stored.video_lighting(avatar, scene.renderer)


def _ground_truth(path: Path, indices: list[int]) -> dict[str, np.ndarray] | None:
    """The truth of the tracked frames; None for a gt.npz that only calibrates the camera (K alone)."""
    with np.load(path) as data:
        gt = {k: data[k] for k in data.files}
    need = ("vertices", "head_R", "head_t", "K")
    if not {"vertices", "head_R", "head_t"} & set(gt):
        return None
    missing = [k for k in need if k not in gt]
    if missing:
        raise ValueError(f"'{path}': fields {missing} missing (expected {list(need)})")
    if len(gt["vertices"]) <= max(indices):
        raise ValueError(f"'{path}': field 'vertices' has {len(gt['vertices'])} frames, the job tracked frame "
                         f"{max(indices)}")
    return {"vertices": gt["vertices"][indices], "head_R": gt["head_R"][indices], "head_t": gt["head_t"][indices],
            "K": gt["K"]}


def load_job(job_dir: str | Path, avatar) -> LoadedJob:
    """Everything `evaluate` and `preview` need from a job folder with at least one tracked frame."""
    folder = JobFolder(job_dir)
    manifest = folder.read_manifest()
    done = set(folder.frames_done())
    indices = [i for i in manifest.frames if i in done]
    if not indices:
        raise JobFolderError(f"{folder.root}: no tracked frame to evaluate")
    video = Path(manifest.video)
    opts = manifest.options
    clip = read_clip(video, opts.get("start", 0), opts.get("stop"), opts.get("stride", 1))
    frames = clip.frames[[clip.indices.index(i) for i in indices]]
    width, height = clip.size
    scene = FaceScene(avatar, torch.as_tensor(manifest.K), width, height)
    track = folder.read_track(indices)
    device = avatar.device
    params = FrameParams(*(torch.as_tensor(track[k], device=device) for k in ("r", "head_t", "z")))
    stored = LandmarkTrack.load(str(folder.root / "landmarks.npz"))
    rows = {i: r for r, i in enumerate(manifest.frames)}
    picked = [rows[i] for i in indices]
    marks = LandmarkTrack(stored.points[picked], stored.confidence[picked], stored.detected[picked], stored.detector)
    scene.use_landmarks_of(marks.detector if opts.get("calibrated_landmarks", True) else None)  # as step 1 did
    root = clip_root(video)
    gt_path = root / "gt.npz"
    gt = _ground_truth(gt_path, indices) if gt_path.exists() else None
    return LoadedJob(folder, manifest, indices, frames, clip.fps / max(1, int(opts.get("stride", 1))), scene,
                     load_job_lighting(folder, avatar, scene), params, track, marks,
                     face_masks(root, indices, marks, height, width), gt, gt_path if gt is not None else None)
