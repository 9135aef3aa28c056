"""Reading a clip (video file or image folder) into linear-RGB frames, with a frame range and stride.

Why OpenCV first: its FFmpeg backend applies the container's rotation metadata (phone videos are often
stored landscape with a 90° display rotation) and reports the frame rate; imageio is the fallback for
formats OpenCV's build lacks. Every error names the file and, when decoding fails, the frame.

Memory follows the work, not the video: frames are decoded one at a time and, with `work_size`, scaled
down before the next is decoded, so only the working-size clip is ever held; the full-size frames can be
streamed again with `Clip.source_frames()` (landmark detection). Frame sizes and counts are capped
(`limits.py`) and checked before a frame is decoded where the container says them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from dlatrack_engine.colour import srgb_to_linear
from dlatrack_engine.video.limits import (
    MAX_CLIP_FRAMES,
    VideoError,
    check_frame_count,
    check_frame_size,
    image_header_size,
)
from dlatrack_engine.video.selection import Selection

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".exr")
STRIPE_ROWS = 256  # rows converted to linear at a time: temporaries stay small for large frames

__all__ = ["MAX_CLIP_FRAMES", "Clip", "VideoError", "VideoInfo", "probe_video", "read_clip"]


@dataclass
class VideoInfo:
    """What a clip says about itself before it is decoded; `frame_count` is None when unknown (raw streams)."""

    path: Path
    frame_count: int | None
    width: int
    height: int
    fps: float


@dataclass
class Clip:
    """Decoded frames of one clip.

    frames: [N, H, W, 3] float32 linear RGB, row 0 = top (conventions.md "Images"), at the working size
        when read with `work_size` (then `scale` < 1 and `source_size` is the video's own size).
    indices: source frame index of each decoded frame (after range and stride).
    """

    path: Path
    frames: np.ndarray
    indices: list[int]
    fps: float
    rotation: int = 0
    source_frame_count: int = 0
    meta: dict = field(default_factory=dict)
    source_size: tuple[int, int] | None = None
    scale: float = 1.0

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels of `frames`."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    def source_frames(self) -> Iterator[np.ndarray]:
        """The selected frames again, at the video's own size, decoded one at a time (nothing is kept)."""
        selection = Selection.of_indices(self.indices)
        for _index, frame in _decode(self.path, selection):
            yield frame


def _to_linear(bgr_or_rgb: np.ndarray, is_bgr: bool, path: Path, index: int) -> np.ndarray:
    image = bgr_or_rgb
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[2] == 4:
        image = image[..., :3]
    if is_bgr and image.shape[2] == 3:
        image = image[..., ::-1]
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    elif image.dtype in (np.float32, np.float64):
        return np.broadcast_to(image, (*image.shape[:2], 3)).astype(np.float32)  # float images (EXR) are linear
    else:
        raise VideoError(f"'{path}': frame {index} has unsupported pixel type {image.dtype}")
    out = np.empty((*image.shape[:2], 3), np.float32)
    for row in range(0, image.shape[0], STRIPE_ROWS):  # same values as converting it whole, less memory
        stripe = image[row : row + STRIPE_ROWS].astype(np.float32) / scale
        out[row : row + STRIPE_ROWS] = srgb_to_linear(stripe)
    return out


def _folder_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise VideoError(f"'{folder}': folder has no images ({', '.join(IMAGE_SUFFIXES)})")
    return files


def _decode_folder(folder: Path, selection: Selection) -> Iterator[tuple[int, np.ndarray]]:
    files = _folder_files(folder)
    for index in selection.within(len(files)):
        size = image_header_size(files[index])
        if size is not None:
            check_frame_size(size[0], size[1], files[index], index)
        image = cv2.imread(str(files[index]), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise VideoError(f"'{files[index]}': frame {index} of image folder '{folder}' could not be decoded")
        check_frame_size(image.shape[1], image.shape[0], files[index], index)
        yield index, _to_linear(image, True, files[index], index)


def _open_capture(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"'{path}': not a readable video (OpenCV/FFmpeg could not open it; corrupt file "
                         "or unsupported codec?)")
    return capture


def _capture_info(capture: cv2.VideoCapture, path: Path) -> VideoInfo:
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
    if width > 0 and height > 0:
        check_frame_size(width, height, path, 0)  # before decoding anything
    fps = float(capture.get(cv2.CAP_PROP_FPS)) or 30.0
    return VideoInfo(path, count if count > 0 else None, width, height, fps)


def _decode_file(path: Path, selection: Selection) -> Iterator[tuple[int, np.ndarray]]:
    capture = _open_capture(path)
    try:
        info = _capture_info(capture, path)
        last = selection.last(info.frame_count)
        index = 0
        while last is None or index <= last:
            ok, image = capture.read()
            if not ok or image is None:
                if info.frame_count is not None and index < info.frame_count:
                    raise VideoError(f"'{path}': frame {index} could not be decoded (the container says "
                                     f"{info.frame_count} frames; truncated or corrupt file?)")
                return
            check_frame_size(image.shape[1], image.shape[0], path, index)
            if index in selection:
                yield index, _to_linear(image, True, path, index)
            index += 1
    finally:
        capture.release()


def _decode(path: Path, selection: Selection) -> Iterator[tuple[int, np.ndarray]]:
    if path.is_dir():
        return _decode_folder(_frames_folder(path), selection)
    return _decode_file(path, selection)


def _frames_folder(path: Path) -> Path:
    return path / "frames" if (path / "frames").is_dir() else path


class _Stack:
    """Frames collected into one array, preallocated when the count is known (no second copy at the end)."""

    def __init__(self, expected: int | None) -> None:
        self.expected = expected
        self.array: np.ndarray | None = None
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        if self.array is None:
            self.array = np.empty((max(self.expected or 8, 1), *frame.shape), np.float32)
        elif self.count == len(self.array):  # the container's count was wrong, or there was none
            grown = np.empty((2 * len(self.array), *frame.shape), np.float32)
            grown[: self.count] = self.array
            self.array = grown
        self.array[self.count] = frame
        self.count += 1

    def result(self) -> np.ndarray:
        if self.array is None:
            return np.zeros((0, 1, 1, 3), np.float32)
        return self.array if self.count == len(self.array) else self.array[: self.count].copy()


def _work_scale(width: int, height: int, work_size: int | None) -> tuple[float, tuple[int, int]]:
    """The pipeline's working-size rule: the longer side scaled to `work_size`, never up."""
    scale = min(1.0, work_size / max(width, height)) if work_size else 1.0
    return scale, (round(width * scale), round(height * scale))


def probe_video(path: str | Path) -> VideoInfo:
    """Frame count and size without decoding the clip (one frame is decoded to prove it is readable)."""
    path = Path(path)
    if not path.exists():
        raise VideoError(f"'{path}': no such file or folder")
    if path.is_dir():
        files = _folder_files(_frames_folder(path))
        _index, first = next(_decode_folder(_frames_folder(path), Selection(0, 1, 1)))
        return VideoInfo(path, len(files), first.shape[1], first.shape[0], _folder_fps(path))
    if path.stat().st_size == 0:
        raise VideoError(f"'{path}': file is empty")
    capture = _open_capture(path)
    try:
        info = _capture_info(capture, path)
    finally:
        capture.release()
    for _index, frame in _decode_file(path, Selection(0, 1, 1)):
        info.width, info.height = frame.shape[1], frame.shape[0]
        return info
    raise VideoError(f"'{path}': no frame could be decoded")


def read_clip(path: str | Path, start: int = 0, stop: int | None = None, stride: int = 1,
              fps: float | None = None, work_size: int | None = None) -> Clip:
    """Decode frames [start, stop) every `stride` of a video file or an image folder.

    `fps` overrides the file's frame rate (image folders default to the rate in a sibling clip.json,
    else 30). With `work_size`, each frame is scaled (INTER_AREA, linear RGB) so that its longer side is
    at most `work_size` as soon as it is decoded.
    """
    path = Path(path)
    selection = Selection(start, stop, stride)
    info = probe_video(path) if path.exists() else None
    if info is None:
        raise VideoError(f"'{path}': no such file or folder")
    expected = selection.count(info.frame_count)
    if expected is not None:
        check_frame_count(expected, path)
        if expected == 0:
            raise VideoError(f"'{path}': the range start={start}, stop={stop}, stride={stride} selects no frame "
                             f"(the clip has {info.frame_count} frames)")
    stack, indices = _Stack(expected), []
    source_size: tuple[int, int] | None = None
    scale, work = 1.0, (0, 0)
    for index, frame in _decode(path, selection):
        size = (frame.shape[1], frame.shape[0])
        if source_size is None:
            source_size = size
            scale, work = _work_scale(*size, work_size)
        elif size != source_size:
            raise VideoError(f"'{path}': frame {index} is {size[0]}x{size[1]}, expected "
                             f"{source_size[0]}x{source_size[1]} like frame {indices[0]}")
        check_frame_count(len(indices) + 1, path)
        stack.add(frame if scale == 1.0 else cv2.resize(frame, work, interpolation=cv2.INTER_AREA))
        indices.append(index)
    if not indices:
        raise VideoError(f"'{path}': no frame could be decoded in the requested range "
                         f"(start={start}, stop={stop}, stride={stride}, frames in file={info.frame_count})")
    rate = fps or (info.fps if not path.is_dir() else _folder_fps(path))
    clip = Clip(path, stack.result(), indices, rate, rotation=_rotation(path),
                source_frame_count=max(info.frame_count or 0, indices[-1] + 1), source_size=source_size,
                scale=scale)
    if path.is_dir():
        files = _folder_files(_frames_folder(path))
        clip.meta["files"] = [str(files[i]) for i in indices]
    log.info("read %d frames of '%s' (%.3g fps, %dx%d%s)", len(indices), path, clip.fps, *source_size,
             f", scaled to {work[0]}x{work[1]}" if scale != 1.0 else "")
    return clip


def _rotation(path: Path) -> int:
    if path.is_dir() or not hasattr(cv2, "CAP_PROP_ORIENTATION_META"):
        return 0
    capture = cv2.VideoCapture(str(path))
    try:
        return int(capture.get(cv2.CAP_PROP_ORIENTATION_META))
    finally:
        capture.release()


def _folder_fps(path: Path) -> float:
    return _clip_json_fps(path) or _clip_json_fps(_frames_folder(path).parent) or 30.0


def _clip_json_fps(folder: Path) -> float | None:
    import json

    meta = folder / "clip.json"
    if not meta.exists():
        return None
    try:
        return float(json.loads(meta.read_text())["fps"])
    except (ValueError, KeyError, TypeError):
        return None
