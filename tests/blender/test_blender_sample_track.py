"""The headless batch on the sample subject: the real engine tracks 3 frames of the committed sample clip
with the committed sample avatar (landmarks, steps 1-3 with the fast schedule), Blender writes and saves
the result, and the tracked avatar covers the face in the video."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.paths import REPO_ROOT, SAMPLE_SCENES, blender_command
from dlatrack_engine.wire.png import decode_png

pytestmark = [pytest.mark.blender, pytest.mark.slow]
FRAMES = 3
AVATAR = SAMPLE_SCENES / "avatar"


CLIP = SAMPLE_SCENES / "clips" / "warm_key_cool_fill"  # committed with its masks and ground truth


def test_batch_tracks_the_sample_clip(tmp_path: Path) -> None:
    clip = CLIP
    blend, job = tmp_path / "scene.blend", tmp_path / "job"
    args = ["--video", str(clip / "video.mp4"), "--avatar", str(AVATAR), "--out", str(blend), "--job-dir", str(job),
            "--frames", f"0:{FRAMES}", "--key-frames", "2", "--preset", "FAST", "--engine-python", sys.executable,
            "--timeout", "500"]  # fmt: skip
    done = subprocess.run(blender_command(REPO_ROOT / "blender_addon" / "batch.py", args),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    manifest = json.loads((job / "manifest.json").read_text())
    assert manifest["state"] == "completed" and "adapt" in manifest["stages_done"]
    saved = run_in_blender(SCRIPTS / "check_saved_blend.py", {"blend": str(blend), "job": str(job)}, timeout=120)
    assert saved["shape_keys"] == ["Basis"] + [f"frame_{i:04d}" for i in range(1, FRAMES + 1)]
    assert saved["images"] == {"full": "SEQUENCE", "relit": "SEQUENCE"}
    assert saved["background"] == [["MOVIE", 0]]
    assert saved["max_vertex_error"] < 1e-5
    # Where the engine says the face is, Blender draws it over the face of the video.
    frames = list(range(1, FRAMES + 1))
    renders = run_in_blender(SCRIPTS / "check_silhouettes.py",
                             {"package": str(AVATAR), "job": str(job), "frames": frames, "out": str(tmp_path)},
                             timeout=180)["renders"]  # fmt: skip
    for frame, path in zip(frames, renders, strict=True):
        rendered = decode_png(Path(path).read_bytes())[..., 3] > 127
        mask = decode_png((clip / "masks" / f"{frame - 1:06d}.png").read_bytes())
        mask = (mask[..., 0] if mask.ndim == 3 else mask) > 127
        iou = (rendered & mask).sum() / (rendered | mask).sum()
        assert iou > 0.8, f"frame {frame}: tracked silhouette IoU {iou:.3f} against the clip's mask"
