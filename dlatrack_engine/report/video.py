"""Writing an H.264 MP4 with the ffmpeg binary that imageio-ffmpeg ships (nothing fetched at run time)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np


def encode_mp4(frames: Iterable[np.ndarray], path: Path, fps: float) -> int:
    """Frames [H, W, 3] uint8 RGB (one size, even sides) -> `path` (yuv420p, plays in browsers and Blender).
    Returns the number of frames written."""
    import imageio_ffmpeg

    writer = None
    count = 0
    try:
        for frame in frames:
            if writer is None:
                size = (frame.shape[1], frame.shape[0])
                if size[0] % 2 or size[1] % 2:
                    raise ValueError(f"'{path}': frame size {size[0]}x{size[1]} must be even for yuv420p")
                writer = imageio_ffmpeg.write_frames(
                    str(path), size, fps=fps, codec="libx264", pix_fmt_in="rgb24", pix_fmt_out="yuv420p",
                    macro_block_size=1, ffmpeg_log_level="error", quality=None,
                    output_params=["-crf", "20", "-preset", "veryfast", "-threads", "2", "-movflags", "+faststart"])
                writer.send(None)
            writer.send(np.ascontiguousarray(frame, dtype=np.uint8))
            count += 1
    finally:
        if writer is not None:
            writer.close()
    if count == 0:
        raise ValueError(f"'{path}': no frame to encode")
    return count
