"""Reading a clip (video file or image folder) into linear-RGB frames, with a frame range and stride.

Why OpenCV first: its FFmpeg backend applies the container's rotation metadata (phone videos are often
stored landscape with a 90° display rotation) and reports the frame rate; imageio is the fallback for
formats OpenCV's build lacks. Every error names the file and, when decoding fails, the frame.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dlatrack_engine.colour import srgb_to_linear

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr")


class VideoError(RuntimeError):
    """A clip that cannot be read; the message names the file and the frame."""


@dataclass
class Clip:
    """Decoded frames of one clip.

    frames: [N, H, W, 3] float32 linear RGB, row 0 = top (conventions.md "Images").
    indices: source frame index of each decoded frame (after range and stride).
    """

    path: Path
    frames: np.ndarray
    indices: list[int]
    fps: float
    rotation: int = 0
    source_frame_count: int = 0
    meta: dict = field(default_factory=dict)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])


def _selected(count: int, start: int, stop: int | None, stride: int) -> list[int]:
    if stride < 1:
        raise ValueError(f"frame stride must be >= 1, got {stride}")
    if start < 0:
        raise ValueError(f"frame range start must be >= 0, got {start}")
    end = count if stop is None else min(stop, count)
    return list(range(start, end, stride))


def _to_linear(bgr_or_rgb: np.ndarray, is_bgr: bool, path: Path, index: int) -> np.ndarray:
    image = bgr_or_rgb
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.shape[2] == 4:
        image = image[..., :3]
    if is_bgr:
        image = image[..., ::-1]
    if image.dtype == np.uint8:
        return srgb_to_linear(image.astype(np.float32) / 255.0)
    if image.dtype == np.uint16:
        return srgb_to_linear(image.astype(np.float32) / 65535.0)
    if image.dtype in (np.float32, np.float64):
        return image.astype(np.float32)  # float images (EXR) are already linear
    raise VideoError(f"'{path}': frame {index} has unsupported pixel type {image.dtype}")


def _read_folder(folder: Path, start: int, stop: int | None, stride: int, fps: float) -> Clip:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(f"'{folder}': folder has no images ({', '.join(IMAGE_SUFFIXES)})")
    chosen = _selected(len(files), start, stop, stride)
    frames = []
    for index in chosen:
        image = cv2.imread(str(files[index]), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise VideoError(f"'{files[index]}': frame {index} of image folder '{folder}' could not be decoded")
        frames.append(_to_linear(image, True, files[index], index))
    _check_sizes(frames, folder, chosen)
    return Clip(folder, np.stack(frames) if frames else np.zeros((0, 1, 1, 3), np.float32), chosen, fps,
                source_frame_count=len(files), meta={"files": [str(files[i]) for i in chosen]})


def _check_sizes(frames: list[np.ndarray], path: Path, indices: list[int]) -> None:
    if not frames:
        return
    first = frames[0].shape
    for frame, index in zip(frames, indices, strict=True):
        if frame.shape != first:
            raise VideoError(f"'{path}': frame {index} is {frame.shape[1]}x{frame.shape[0]}, "
                             f"expected {first[1]}x{first[0]} like frame {indices[0]}")


def _read_file(path: Path, start: int, stop: int | None, stride: int) -> Clip:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"'{path}': not a readable video (OpenCV/FFmpeg could not open it; corrupt file "
                         "or unsupported codec?)")
    try:
        fps = float(capture.get(cv2.CAP_PROP_FPS)) or 30.0
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        rotation = int(capture.get(cv2.CAP_PROP_ORIENTATION_META)) if hasattr(
            cv2, "CAP_PROP_ORIENTATION_META") else 0
        wanted = set(_selected(count if count > 0 else 1 << 30, start, stop, stride))
        last_wanted = max(wanted) if wanted else -1
        frames, indices = [], []
        index = 0
        while index <= last_wanted:
            ok, image = capture.read()
            if not ok or image is None:
                if count > 0 and index < count:
                    raise VideoError(f"'{path}': frame {index} could not be decoded (the container says "
                                     f"{count} frames; truncated or corrupt file?)")
                break
            if index in wanted:
                frames.append(_to_linear(image, True, path, index))
                indices.append(index)
            index += 1
    finally:
        capture.release()
    if not frames and wanted:
        raise VideoError(f"'{path}': no frame could be decoded in the requested range "
                         f"(start={start}, stop={stop}, stride={stride}, frames in file={count})")
    _check_sizes(frames, path, indices)
    log.info("read %d frames of '%s' (%.3g fps, rotation %d°)", len(frames), path, fps, rotation)
    return Clip(path, np.stack(frames), indices, fps, rotation=rotation, source_frame_count=max(count, index))


def read_clip(path: str | Path, start: int = 0, stop: int | None = None, stride: int = 1,
              fps: float | None = None) -> Clip:
    """Decode frames [start, stop) every `stride` of a video file or an image folder.

    `fps` overrides the file's frame rate (image folders default to the rate in a sibling clip.json,
    else 30).
    """
    path = Path(path)
    if not path.exists():
        raise VideoError(f"'{path}': no such file or folder")
    if path.is_dir():
        folder = path / "frames" if (path / "frames").is_dir() else path
        rate = fps or _clip_json_fps(path) or _clip_json_fps(folder.parent) or 30.0
        return _read_folder(folder, start, stop, stride, rate)
    if path.stat().st_size == 0:
        raise VideoError(f"'{path}': file is empty")
    clip = _read_file(path, start, stop, stride)
    if fps:
        clip.fps = fps
    return clip


def _clip_json_fps(folder: Path) -> float | None:
    import json

    meta = folder / "clip.json"
    if not meta.exists():
        return None
    try:
        return float(json.loads(meta.read_text())["fps"])
    except (ValueError, KeyError, TypeError):
        return None
