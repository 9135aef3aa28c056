"""Write a light-stage dataset (numpy + stdlib only, so Blender's Python and any capture script can use it).

Frames are written file by file with tmp + rename, and dataset.json is rewritten after every frame, so an
interrupted capture is still a valid (shorter) dataset.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..wire.atomic import atomic_write_bytes
from ..wire.png import encode_png
from . import format as fmt


def encode_linear_png16(image: np.ndarray, exposure_scale: float) -> bytes:
    """Linear RGB `[H, W, 3]` -> 16-bit PNG storing `value / exposure_scale * 65535` (clipped)."""
    scaled = np.clip(np.asarray(image, np.float64) / exposure_scale, 0.0, 1.0) * 65535.0 + 0.5
    return encode_png(scaled.astype(np.uint16), compression=4)


def encode_mask_png(mask: np.ndarray) -> bytes:
    """Boolean or [0, 1] mask `[H, W]` -> 8-bit PNG (255 = subject)."""
    return encode_png((np.clip(np.asarray(mask, np.float64), 0, 1) * 255.0 + 0.5).astype(np.uint8))


class LightStageWriter:
    """Builds `<root>/` in the conventions.md layout; call `add_frame` per frame, `close` at the end."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        cameras: list[dict[str, Any]],
        topology: dict[str, np.ndarray],
        exposure_scale: float = fmt.DEFAULT_EXPOSURE_SCALE,
        provenance: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.root = Path(root)
        self.exposure_scale = float(exposure_scale)
        self.cameras = [
            {
                "name": str(c["name"]),
                "K": np.asarray(c["K"], float).tolist(),
                "R": np.asarray(c["R"], float).tolist(),
                "t": np.asarray(c["t"], float).tolist(),
                "width": int(c["width"]),
                "height": int(c["height"]),
            }
            for c in cameras
        ]
        self.frames: list[dict[str, Any]] = []
        self.provenance = provenance or {}
        self.extra = extra or {}
        self.num_vertices = int(np.asarray(topology["neutral"]).shape[0])
        buffer = io.BytesIO()
        np.savez(buffer, **{k: np.asarray(v) for k, v in topology.items()})
        atomic_write_bytes(self.root / fmt.TOPOLOGY_FILE, buffer.getvalue())
        self._write_json()

    def _config(self) -> dict[str, Any]:
        config = {
            "format": fmt.FORMAT_NAME,
            "format_version": fmt.FORMAT_VERSION,
            "exposure_scale": self.exposure_scale,
            "num_light_groups": fmt.NUM_LIGHT_GROUPS,
            "cameras": self.cameras,
            "frames": self.frames,
            "topology": fmt.TOPOLOGY_FILE,
            "provenance": self.provenance,
        }
        config.update(self.extra)
        return config

    def _write_json(self) -> None:
        config = self._config()
        fmt.validate_dataset_json(config, str(self.root / fmt.DATASET_JSON))
        atomic_write_bytes(self.root / fmt.DATASET_JSON, json.dumps(config, indent=1).encode())

    def add_frame(
        self,
        frame_id: int,
        kind: str,
        light_code: np.ndarray,
        head_R: np.ndarray,
        head_t: np.ndarray,
        vertices: np.ndarray,
        images: dict[str, np.ndarray],
        masks: dict[str, np.ndarray],
        extra_meta: dict[str, np.ndarray] | None = None,
        extra_fields: dict[str, Any] | None = None,
    ) -> None:
        """Write one frame: every camera's linear RGB image and mask, then meta.npz, then dataset.json."""
        where = f"{self.root}/{fmt.frame_dir(frame_id)}"
        if kind not in fmt.FRAME_KINDS:
            raise fmt.LightStageFormatError(f"{where}: kind {kind!r}, expected one of {fmt.FRAME_KINDS}")
        names = [c["name"] for c in self.cameras]
        if set(images) != set(names) or set(masks) != set(names):
            raise fmt.LightStageFormatError(
                f"{where}: images for {sorted(images)} and masks for {sorted(masks)}, expected cameras {names}"
            )
        folder = self.root / fmt.frame_dir(frame_id)
        for cam in self.cameras:
            name, shape = cam["name"], (cam["height"], cam["width"])
            if images[name].shape != (*shape, 3) or masks[name].shape != shape:
                raise fmt.LightStageFormatError(
                    f"{where}: camera '{name}' image {images[name].shape} / mask {masks[name].shape}, "
                    f"expected {(*shape, 3)} / {shape}"
                )
            atomic_write_bytes(folder / f"{name}.png", encode_linear_png16(images[name], self.exposure_scale))
            atomic_write_bytes(folder / f"{name}_mask.png", encode_mask_png(masks[name]))
        meta = {
            "light_code": np.asarray(light_code, np.float32),
            "head_R": np.asarray(head_R, np.float32),
            "head_t": np.asarray(head_t, np.float32),
            "vertices": np.asarray(vertices, np.float32),
        }
        fmt.validate_meta(meta, self.num_vertices, f"{where}/meta.npz")
        meta.update({k: np.asarray(v) for k, v in (extra_meta or {}).items()})
        buffer = io.BytesIO()
        np.savez(buffer, **meta)
        atomic_write_bytes(folder / "meta.npz", buffer.getvalue())
        self.frames = [f for f in self.frames if f["id"] != frame_id]
        self.frames.append({"id": int(frame_id), "kind": kind, **(extra_fields or {})})
        self.frames.sort(key=lambda f: f["id"])
        self._write_json()

    def close(self, **fields: Any) -> None:
        """Final dataset.json, with any extra top-level fields (e.g. timing)."""
        self.extra.update(fields)
        self._write_json()
