"""Caps on what a clip may hold, checked before the memory is committed, with errors naming the file.

A 10000x10000 frame costs 1.2 GB as linear float32 before anything else happens; a clip's frames are held
at the working size for the whole job. The caps keep a careless (or hostile) input from exhausting memory:
8K UHD (7680x4320, 33 MP) still fits, and the frame count bounds the working clip.
"""

from __future__ import annotations

import warnings
from pathlib import Path

MAX_FRAME_SIDE = 16384
MAX_FRAME_PIXELS = 36_000_000
MAX_CLIP_FRAMES = 20_000


class VideoError(RuntimeError):
    """A clip that cannot be read; the message names the file and the frame."""


def check_frame_size(width: int, height: int, path: Path, index: int) -> None:
    if max(width, height) > MAX_FRAME_SIDE or width * height > MAX_FRAME_PIXELS:
        raise VideoError(
            f"'{path}': frame {index} is {width}x{height} ({width * height / 1e6:.1f} MP); the engine reads frames "
            f"of at most {MAX_FRAME_PIXELS / 1e6:.0f} MP and {MAX_FRAME_SIDE} px a side (scale the video down first)"
        )


def check_frame_count(count: int, path: Path) -> None:
    if count > MAX_CLIP_FRAMES:
        raise VideoError(
            f"'{path}': the requested range selects more than {MAX_CLIP_FRAMES} frames; track it in parts "
            "(options start/stop) or with a stride"
        )


def image_header_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header without decoding it; None when the header is unknown
    (OpenCV then decides, and its own decoder names the problem)."""
    try:
        from PIL import Image
    except ImportError:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the caller's cap decides
            with Image.open(path) as image:
                return int(image.size[0]), int(image.size[1])
    except Image.DecompressionBombError as exc:  # PIL itself refuses: far past our cap as well
        raise VideoError(f"'{path}': image too large ({exc})") from exc
    except Exception:  # not an image PIL knows (EXR) or a broken header: leave the verdict to OpenCV
        return None
