"""Issue 19, class 4: memory follows the working clip, not the video; sizes and counts are capped with
errors naming the file and frame; a raw stream without a frame count is read without materialising a range."""

from __future__ import annotations

import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from dlatrack_engine.video import VideoError, read_clip
from dlatrack_engine.video import limits as video_limits


def _h264(path: Path, frames: int) -> Path:
    """A raw H.264 elementary stream: OpenCV reports a negative frame count for it."""
    data = b"".join(np.full((32, 48, 3), 20 * i, np.uint8).tobytes() for i in range(frames))
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", "48x32", "-r", "25", "-i", "-", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-f", "h264", str(path)]
    subprocess.run(cmd, input=data, check=True)
    return path


def test_a_raw_stream_without_stop_reads_what_is_there(tmp_path: Path) -> None:
    """Before: a negative count made the reader build range(2**30). A child process with 2 GB of address
    space fails cleanly instead of taking the machine's memory if that comes back."""
    path = _h264(tmp_path / "raw.h264", 6)
    probe = cv2.VideoCapture(str(path))
    assert probe.get(cv2.CAP_PROP_FRAME_COUNT) <= 0  # the condition this test is about
    probe.release()
    script = textwrap.dedent(f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
        from dlatrack_engine.video import read_clip
        clip = read_clip({str(path)!r}, start=1, stride=2)
        print(clip.indices, clip.frames.shape)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[1, 3, 5] (3, 32, 48, 3)"


def _mp4(path: Path, frames: int, width: int = 960, height: int = 540) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (width, height))
    for i in range(frames):
        image = np.full((height, width, 3), 30 + 3 * i, np.uint8)
        image[:, : width // 4] = 200
        writer.write(image)
    writer.release()
    return path


def _peak_while_reading(path: Path, work_size: int) -> tuple[int, np.ndarray]:
    tracemalloc.start()
    try:
        clip = read_clip(path, work_size=work_size)
        return tracemalloc.get_traced_memory()[1], clip.frames
    finally:
        tracemalloc.stop()


def test_memory_is_flat_in_clip_length_when_scaled_as_decoded(tmp_path: Path) -> None:
    """Before: every frame was decoded and held at full size, then scaled (60 frames of 1080p: 3.6 GB)."""
    short, long = _mp4(tmp_path / "short.mp4", 8), _mp4(tmp_path / "long.mp4", 32)
    peak_short, frames_short = _peak_while_reading(short, 64)
    peak_long, frames_long = _peak_while_reading(long, 64)
    assert frames_short.shape == (8, 36, 64, 3) and frames_long.shape == (32, 36, 64, 3)
    full_frame = 960 * 540 * 3 * 4
    assert peak_long < peak_short + 2 * full_frame, (peak_short, peak_long)  # not one full frame per frame
    assert peak_long < 6 * full_frame


def test_scaled_frames_equal_scaling_the_full_frames(tmp_path: Path) -> None:
    """The registration's numbers do not change: same INTER_AREA on the same linear frame."""
    path = _mp4(tmp_path / "clip.mp4", 3, 200, 120)
    full, scaled = read_clip(path), read_clip(path, work_size=64)
    assert scaled.scale == pytest.approx(64 / 200) and scaled.source_size == (200, 120)
    for frame, small in zip(full.frames, scaled.frames, strict=True):
        np.testing.assert_array_equal(cv2.resize(frame, (64, 38), interpolation=cv2.INTER_AREA), small)
    again = list(scaled.source_frames())
    np.testing.assert_array_equal(np.stack(again), full.frames)


def _png_header_only(path: Path, width: int, height: int) -> Path:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
    return path


def test_a_frame_past_the_size_cap_is_refused_before_decoding(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    _png_header_only(folder / "000000.png", 10000, 10000)
    with pytest.raises(VideoError, match=r"000000\.png': frame 0 is 10000x10000 \(100\.0 MP\)"):
        read_clip(folder)


def test_the_frame_count_and_an_empty_range_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(5):
        cv2.imwrite(str(folder / f"{i:06d}.png"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(VideoError, match="selects no frame"):
        read_clip(folder, start=7)
    monkeypatch.setattr(video_limits, "MAX_CLIP_FRAMES", 3)
    with pytest.raises(VideoError, match="more than 3 frames"):
        read_clip(folder)
    assert read_clip(folder, stride=2).indices == [0, 2, 4]
