"""Light-stage data in memory for training: images, masks, cameras, light codes, meshes, head poses.

Reads the dataset format of docs/conventions.md ("Light-stage dataset") and keeps everything as tensors at
a training resolution (images are downsampled once, intrinsics scaled to match), because every epoch then
touches only memory: on a CPU, PNG decoding would otherwise dominate training time.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch

from dlatrack_engine.avatar.format import Topology, topology_from_arrays
from dlatrack_engine.geometry import matrix_to_axis_angle
from dlatrack_engine.lightstage import format as lsfmt
from dlatrack_engine.render.camera import Camera

log = logging.getLogger(__name__)


@dataclass
class LightStageData:
    """A light-stage capture at training resolution. N frames, C cameras, images [N,C,H,W,3] linear RGB
    (float16 to halve memory), masks [N,C,H,W,1] (bool)."""

    root: Path
    camera_names: list[str]
    K: torch.Tensor  # [C,3,3] at training resolution
    R: torch.Tensor  # [C,3,3] world -> camera
    t: torch.Tensor  # [C,3]
    width: int
    height: int
    frame_ids: list[int]
    kinds: list[str]  # "full" | "group" per frame
    light_codes: torch.Tensor  # [N,150]
    head_R: torch.Tensor  # [N,3,3] head -> world
    head_t: torch.Tensor  # [N,3]
    vertices: torch.Tensor  # [N,V,3] head frame
    images: torch.Tensor  # [N,C,H,W,3] float16
    masks: torch.Tensor  # [N,C,H,W,1] bool
    topology: Topology
    provenance: dict = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return len(self.frame_ids)

    @property
    def num_cameras(self) -> int:
        return len(self.camera_names)

    @property
    def head_r(self) -> torch.Tensor:
        """Axis-angle head rotations [N,3] (the r of h_v)."""
        return matrix_to_axis_angle(self.head_R)

    def camera(self, cams: torch.Tensor) -> Camera:
        """A batched `Camera` for camera indices `cams` [B]."""
        return Camera(self.K[cams], self.R[cams], self.t[cams], self.width, self.height)

    def view_vectors(self, frames: torch.Tensor, cams: torch.Tensor) -> torch.Tensor:
        """v_v of Eq. 1/3: unit vector head centre -> camera centre, in the head frame, [B,3]."""
        centre_world = -(self.R[cams].transpose(1, 2) @ self.t[cams, :, None])[..., 0]
        rel = centre_world - self.head_t[frames]
        v = (self.head_R[frames].transpose(1, 2) @ rel[..., None])[..., 0]
        return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-9)

    def world_vertices(self, vertices: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Head-frame vertices [B,V,3] of `frames` [B] -> world frame (x_world = R x_head + t)."""
        frames = frames.cpu()
        R, t = self.head_R[frames].to(vertices.device), self.head_t[frames].to(vertices.device)
        return vertices @ R.transpose(1, 2) + t[:, None]

    def full_frames(self) -> list[int]:
        return [i for i, k in enumerate(self.kinds) if k == "full"]


def _fail(where: object, message: str) -> ValueError:
    return ValueError(f"{where}: {message}")


def _read_png(path: Path, flags: int) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise _fail(path, "missing or not a readable PNG")
    return image


def _read_dataset_json(root: Path) -> tuple[dict, Path]:
    """dataset.json, validated against the format (lightstage/format.py)."""
    meta_path = root / "dataset.json"
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError as error:
        raise _fail(meta_path, "not found (is this a light-stage dataset folder?)") from error
    except json.JSONDecodeError as error:
        raise _fail(meta_path, f"not valid JSON ({error})") from error
    if not isinstance(meta, dict):
        raise _fail(meta_path, "expected a JSON object")
    lsfmt.validate_dataset_json(meta, str(meta_path))
    return meta, meta_path


@dataclass
class _Cameras:
    """The capture's cameras at training resolution (intrinsics scaled with the images)."""

    names: list[str]
    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    size: tuple[int, int]  # (width, height) at training resolution
    captured_size: tuple[int, int]  # (width, height) of the PNGs


def _cameras(meta: dict, meta_path: Path, max_image_size: int | None) -> _Cameras:
    cams = meta["cameras"]
    width0, height0 = int(cams[0]["width"]), int(cams[0]["height"])
    if any(int(c["width"]) != width0 or int(c["height"]) != height0 for c in cams):
        raise _fail(meta_path, "all cameras must share one image size for batched training")
    scale = 1.0 if not max_image_size else min(1.0, max_image_size / max(width0, height0))
    width, height = round(width0 * scale), round(height0 * scale)
    K = torch.tensor(np.array([c["K"] for c in cams], dtype=np.float32))
    K[:, 0] *= width / width0
    K[:, 1] *= height / height0
    R = torch.tensor(np.array([c["R"] for c in cams], dtype=np.float32))
    t = torch.tensor(np.array([c["t"] for c in cams], dtype=np.float32))
    return _Cameras([c["name"] for c in cams], K, R, t, (width, height), (width0, height0))


def _read_images(folder: Path, cameras: _Cameras, exposure: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One frame's images [C,H,W,3] float16 (linear, exposure applied) and masks [C,H,W,1] bool."""
    frame_images, frame_masks = [], []
    for name in cameras.names:
        png = _read_png(folder / f"{name}.png", cv2.IMREAD_UNCHANGED)
        if png.dtype != np.uint16 or png.ndim != 3:
            raise _fail(folder / f"{name}.png", f"expected 16-bit RGB, got {png.dtype} {png.shape}")
        rgb = png[..., ::-1].astype(np.float32) * (exposure / 65535.0)
        mask = _read_png(folder / f"{name}_mask.png", cv2.IMREAD_GRAYSCALE).astype(np.float32) / 255.0
        if cameras.size != cameras.captured_size:
            rgb = cv2.resize(rgb, cameras.size, interpolation=cv2.INTER_AREA)
            mask = cv2.resize(mask, cameras.size, interpolation=cv2.INTER_AREA)
        frame_images.append(torch.from_numpy(rgb).to(torch.float16))
        frame_masks.append(torch.from_numpy(mask > 0.5)[..., None])
    return torch.stack(frame_images), torch.stack(frame_masks)


def _read_meta_npz(folder: Path, num_vertices: int) -> dict[str, np.ndarray]:
    """One frame's light code, head pose and tracked mesh (float32), validated."""
    with np.load(folder / "meta.npz", allow_pickle=False) as npz:
        lsfmt.validate_meta({k: npz[k] for k in npz.files}, num_vertices, str(folder / "meta.npz"))
        return {key: npz[key].astype(np.float32) for key in ("light_code", "head_R", "head_t", "vertices")}


def load_lightstage(
    root: str | Path, max_image_size: int | None = None, frames: list[int] | None = None
) -> LightStageData:
    """Load the dataset at `root`, downsampling images so their longer side is <= `max_image_size`.

    `frames` (indices into dataset.json's frame list) restricts loading to a subset (tests, quick runs).
    """
    root = Path(root)
    meta, meta_path = _read_dataset_json(root)
    cameras = _cameras(meta, meta_path, max_image_size)
    topo_path = root / meta["topology"]
    with np.load(topo_path, allow_pickle=False) as npz:
        topology = topology_from_arrays({k: npz[k] for k in npz.files}, str(topo_path))
    frame_list = meta["frames"]
    if not frame_list:
        raise _fail(meta_path, "lists no frames (is the dataset still being written?)")
    chosen = range(len(frame_list)) if frames is None else frames
    if frames is not None and (min(frames) < 0 or max(frames) >= len(frame_list)):
        raise _fail(meta_path, f"frame indices {min(frames)}..{max(frames)} requested, it lists {len(frame_list)}")
    ids, kinds, metas, images, masks = [], [], [], [], []
    for index in chosen:
        entry = frame_list[index]
        folder = root / lsfmt.frame_dir(int(entry["id"]))
        metas.append(_read_meta_npz(folder, topology.num_vertices))
        frame_images, frame_masks = _read_images(folder, cameras, float(meta["exposure_scale"]))
        ids.append(int(entry["id"]))
        kinds.append(str(entry.get("kind", "group")))
        images.append(frame_images)
        masks.append(frame_masks)
    width, height = cameras.size
    log.info("loaded %d frames x %d cameras at %dx%d from %s", len(ids), len(cameras.names), width, height, root)

    def stacked(key: str) -> torch.Tensor:
        return torch.tensor(np.array([m[key] for m in metas]))

    return LightStageData(
        root=root, camera_names=cameras.names, K=cameras.K, R=cameras.R, t=cameras.t, width=width, height=height,
        frame_ids=ids, kinds=kinds, light_codes=stacked("light_code"), head_R=stacked("head_R"),
        head_t=stacked("head_t"), vertices=stacked("vertices"), images=torch.stack(images),
        masks=torch.stack(masks), topology=topology, provenance=dict(meta.get("provenance", {})),
    )  # fmt: skip


@dataclass(frozen=True)
class Split:
    """Which cameras and frames are held out of training (evaluation uses exactly these)."""

    holdout_cameras: tuple[str, ...]
    holdout_frame_ids: tuple[int, ...]

    def to_dict(self) -> dict:
        return {"holdout_cameras": list(self.holdout_cameras), "holdout_frame_ids": list(self.holdout_frame_ids)}

    def train_cameras(self, data: LightStageData) -> list[int]:
        return [i for i, n in enumerate(data.camera_names) if n not in self.holdout_cameras]

    def test_cameras(self, data: LightStageData) -> list[int]:
        return [i for i, n in enumerate(data.camera_names) if n in self.holdout_cameras]

    def train_frames(self, data: LightStageData, kind: str | None = None) -> list[int]:
        held = set(self.holdout_frame_ids)
        return [i for i, f in enumerate(data.frame_ids) if f not in held and kind in (None, data.kinds[i])]

    def test_frames(self, data: LightStageData, kind: str | None = None) -> list[int]:
        held = set(self.holdout_frame_ids)
        return [i for i, f in enumerate(data.frame_ids) if f in held and kind in (None, data.kinds[i])]


def make_split(data: LightStageData, holdout_cameras: list[str] | None = None, holdout_every: int = 6) -> Split:
    """Hold out the named cameras (default: the last one when there are >= 3) and every `holdout_every`-th
    frame of each kind (offset by half a period so held-out frames sit between training frames)."""
    if holdout_cameras is None:
        holdout_cameras = [data.camera_names[-1]] if data.num_cameras >= 3 else []
    unknown = sorted(set(holdout_cameras) - set(data.camera_names))
    if unknown:
        raise ValueError(f"held-out camera(s) {unknown} are not in {data.root} (cameras: {data.camera_names})")
    held: list[int] = []
    if holdout_every > 0:
        for kind in sorted(set(data.kinds)):
            indices = [i for i, k in enumerate(data.kinds) if k == kind]
            held += [data.frame_ids[i] for j, i in enumerate(indices) if j % holdout_every == holdout_every // 2]
    return Split(tuple(holdout_cameras), tuple(sorted(held)))


def pose_key(data: LightStageData, frame: int) -> bytes:
    """Bytes identifying the frame's mesh and head pose: equal keys = captured at the same instant."""
    return b"".join(t[frame].contiguous().numpy().tobytes() for t in (data.vertices, data.head_R, data.head_t))


def same_pose_full_frames(data: LightStageData, frames: Iterable[int]) -> dict[int, int]:
    """{frame: a fully-lit frame with its exact mesh and pose} for those of `frames` that have one (the
    sample light stage renders one per pose): the reference that turns a pattern image into its true
    shading ratio (evaluate.py, shading_ratio.py). Each fully-lit frame's key is computed once."""
    by_pose = {pose_key(data, f): f for f in reversed(data.full_frames())}  # the first one wins
    twins = {frame: by_pose.get(pose_key(data, frame)) for frame in frames}
    return {frame: twin for frame, twin in twins.items() if twin is not None}


def nearest_full_frame(data: LightStageData, frame: int) -> int:
    """Index of the fully-lit frame closest in capture order (a group frame's best texture reference)."""
    full = data.full_frames()
    if not full:
        raise ValueError(f"{data.root}: no fully-lit ('full') frames; the DAM needs them")
    return min(full, key=lambda i: (abs(data.frame_ids[i] - data.frame_ids[frame]), i))
