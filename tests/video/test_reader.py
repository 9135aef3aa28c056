"""Video input: files and image folders, range/stride, fps, rotation metadata, errors naming file and frame."""

from __future__ import annotations

import json
import subprocess

import cv2
import imageio_ffmpeg
import numpy as np
import pytest

from dlatrack_engine.colour import srgb8_to_linear
from dlatrack_engine.video import VideoError, read_clip


def _frames(n: int = 6, h: int = 32, w: int = 48) -> list[np.ndarray]:
    """Distinct frames: frame i has a bright bar at column 4 i (so order is checkable after compression)."""
    out = []
    for i in range(n):
        img = np.full((h, w, 3), 40, np.uint8)
        img[:, 4 * i : 4 * i + 4] = 230
        out.append(img)
    return out


def _folder(tmp_path, frames):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:06d}.png"), f[..., ::-1])
    return folder


def _mp4(path, frames, fps=25, extra=()):
    h, w = frames[0].shape[:2]
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24",
           "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", *extra, "-pix_fmt", "yuv420p", "-c:v", "libx264",
           "-qp", "0", str(path)]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


def _bar_column(linear_frame: np.ndarray) -> int:
    return int(np.argmax(linear_frame[..., 1].mean(0))) // 4


def test_image_folder_range_stride_and_linear_values(tmp_path):
    frames = _frames()
    folder = _folder(tmp_path, frames)
    (tmp_path / "clip.json").write_text(json.dumps({"fps": 12}))
    clip = read_clip(tmp_path, start=1, stop=6, stride=2)
    assert clip.indices == [1, 3, 5] and clip.fps == 12 and clip.size == (48, 32)
    assert [_bar_column(f) for f in clip.frames] == [1, 3, 5]
    np.testing.assert_allclose(clip.frames[0], srgb8_to_linear(frames[1]), atol=1e-6)
    assert read_clip(folder).frames.shape == (6, 32, 48, 3)


def test_video_file_fps_and_stride(tmp_path):
    path = _mp4(tmp_path / "a.mp4", _frames(), fps=25)
    clip = read_clip(path, stride=2)
    assert clip.indices == [0, 2, 4] and abs(clip.fps - 25) < 1e-6
    assert [_bar_column(f) for f in clip.frames] == [0, 2, 4]


def test_rotation_metadata_is_applied(tmp_path):
    plain = _mp4(tmp_path / "plain.mp4", _frames(2))
    path = tmp_path / "rot.mp4"  # a phone-style display rotation, set on the container without re-encoding
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-display_rotation:v:0", "90",
                    "-i", str(plain), "-c", "copy", str(path)], check=True)
    probe = cv2.VideoCapture(str(path))
    meta = probe.get(cv2.CAP_PROP_ORIENTATION_META)
    probe.release()
    if not meta:
        pytest.skip("this FFmpeg build does not write display rotation")
    clip = read_clip(path)
    assert clip.size == (32, 48) and clip.rotation in (90, 270, -90)  # 48x32 stored, shown upright 32x48


def test_corrupt_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(200))
    with pytest.raises(VideoError, match=r"broken\.mp4"):
        read_clip(bad)


def test_truncated_file_names_the_frame(tmp_path):
    path = _mp4(tmp_path / "t.mp4", _frames(30, 64, 64))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(VideoError, match=r"t\.mp4.*(frame \d+|not a readable)"):
        read_clip(path)


def test_unreadable_frame_in_folder_names_file_and_frame(tmp_path):
    folder = _folder(tmp_path, _frames(4))
    (folder / "000002.png").write_bytes(b"not a png")
    with pytest.raises(VideoError, match=r"000002\.png.*frame 2"):
        read_clip(folder)


def test_frame_of_another_size_is_named(tmp_path):
    frames = _frames(3)
    frames[1] = frames[1][:16]
    folder = _folder(tmp_path, frames)
    with pytest.raises(VideoError, match="frame 1 is 48x16"):
        read_clip(folder)


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        read_clip(tmp_path / "nope.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="no images"):
        read_clip(tmp_path / "empty")
