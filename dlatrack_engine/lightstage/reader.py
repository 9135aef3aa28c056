"""Read a light-stage dataset (conventions.md) into numpy arrays; training code wraps this in its loaders.

Validates dataset.json on open and each file as it is read, so a broken capture names the frame, camera
and field instead of failing inside a training step.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from . import format as fmt


@dataclass(frozen=True)
class StageCamera:
    name: str
    K: np.ndarray  # [3, 3]
    R: np.ndarray  # [3, 3]
    t: np.ndarray  # [3]
    width: int
    height: int


class LightStageDataset:
    """A dataset folder: cameras, frames, topology, and per-frame/per-camera images, masks and meta."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        path = self.root / fmt.DATASET_JSON
        try:
            self.config: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError as error:
            raise fmt.LightStageFormatError(f"{path}: not found (is {self.root} a light-stage dataset?)") from error
        except json.JSONDecodeError as error:
            raise fmt.LightStageFormatError(f"{path}: not valid JSON ({error})") from error
        fmt.validate_dataset_json(self.config, str(path))
        self.exposure_scale = float(self.config["exposure_scale"])
        self.cameras = [
            StageCamera(c["name"], np.array(c["K"]), np.array(c["R"]), np.array(c["t"]), c["width"], c["height"])
            for c in self.config["cameras"]
        ]
        self.frames: list[dict[str, Any]] = list(self.config["frames"])
        topo_path = self.root / self.config["topology"]
        try:
            with np.load(topo_path) as npz:
                self.topology = {key: npz[key] for key in npz.files}
        except FileNotFoundError as error:
            raise fmt.LightStageFormatError(f"{topo_path}: topology file is missing") from error
        if "neutral" not in self.topology or "faces" not in self.topology:
            raise fmt.LightStageFormatError(f"{topo_path}: arrays 'neutral' and 'faces' are required")

    def camera(self, name: str) -> StageCamera:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(f"{self.root}: no camera {name!r}; cameras are {[c.name for c in self.cameras]}")

    def frame_ids(self, kind: str | None = None) -> list[int]:
        """Frame ids in order, optionally only "full" or "group" frames."""
        return [f["id"] for f in self.frames if kind is None or f["kind"] == kind]

    def frame_info(self, frame_id: int) -> dict[str, Any]:
        for frame in self.frames:
            if frame["id"] == frame_id:
                return frame
        raise KeyError(f"{self.root}: no frame {frame_id} in {fmt.DATASET_JSON}")

    def _read_png(self, path: Path, channels: int, depth: type) -> np.ndarray:
        image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise fmt.LightStageFormatError(f"{path}: missing or not a readable PNG")
        shape_ok = (channels == 1 and image.ndim == 2) or (image.ndim == 3 and image.shape[2] == channels)
        if image.dtype != depth or not shape_ok:
            raise fmt.LightStageFormatError(
                f"{path}: {image.dtype} with shape {image.shape}, expected {np.dtype(depth)} with {channels} channel(s)"
            )
        return image[..., ::-1] if channels == 3 else image

    def image(self, frame_id: int, camera: str) -> np.ndarray:
        """Linear RGB float32 `[H, W, 3]` of one frame and camera."""
        path = self.root / fmt.frame_dir(frame_id) / f"{camera}.png"
        png = self._read_png(path, 3, np.uint16)
        cam = self.camera(camera)
        if png.shape[:2] != (cam.height, cam.width):
            raise fmt.LightStageFormatError(
                f"{path}: size {png.shape[1]}x{png.shape[0]}, camera says {cam.width}x{cam.height}"
            )
        return png.astype(np.float32) * np.float32(self.exposure_scale / 65535.0)

    def mask(self, frame_id: int, camera: str) -> np.ndarray:
        """Foreground mask (bool `[H, W]`, True = subject)."""
        path = self.root / fmt.frame_dir(frame_id) / f"{camera}_mask.png"
        return self._read_png(path, 1, np.uint8) >= 128

    def meta(self, frame_id: int) -> dict[str, np.ndarray]:
        """light_code, head_R, head_t, vertices (and any extra arrays, e.g. expression)."""
        path = self.root / fmt.frame_dir(frame_id) / "meta.npz"
        try:
            with np.load(path) as npz:
                meta = {key: npz[key] for key in npz.files}
        except FileNotFoundError as error:
            raise fmt.LightStageFormatError(f"{path}: missing") from error
        fmt.validate_meta(meta, int(self.topology["neutral"].shape[0]), str(path))
        return meta

    def uv_texture(self, frame_id: int, camera: str) -> tuple[np.ndarray, np.ndarray]:
        """Unwrapped fully-lit texture (linear `[T, T, 3]`, row 0 = v = 1) and its visibility weight `[T, T]`."""
        folder = self.root / fmt.uv_dir(frame_id)
        texture = self._read_png(folder / f"{camera}.png", 3, np.uint16).astype(np.float32)
        weight = self._read_png(folder / f"{camera}_vis.png", 1, np.uint8).astype(np.float32) / 255.0
        return texture * np.float32(self.exposure_scale / 65535.0), weight
