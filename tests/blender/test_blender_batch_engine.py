"""batch.py with the real engine: a tiny clip of a small (untrained) dome avatar, tracked by the real
pipeline in an engine subprocess, written into a .blend and rendered with Cycles.

The dome has no face for a landmark detector to find, so the job folder starts with the ground-truth
landmark track in `landmarks.npz` — the file the pipeline itself writes after detection and reuses on
resume. To fit the test budget on 2 CPU cores the job runs step 1 only (`steps=landmarks`, `lighting=none`:
steps 2-3 of the fast schedule take minutes even at 96 px; the fit tests cover them), so the relit texture
sequence may be absent. The
engine process, socket, job folder, textures, the batch pump and the scene writers are all real; with
`--mirror` the frames reach Blender over the socket (`job_frames`), as from an engine on another machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.paths import REPO_ROOT, blender_command

pytestmark = [pytest.mark.blender, pytest.mark.slow]
FRAMES = 2


def make_clip(root: Path) -> tuple[Path, Path, Path]:
    """(avatar package, frames folder, job folder seeded with landmarks) for a FRAMES-frame clip."""
    import cv2
    import torch

    sys.path.insert(0, str(REPO_ROOT / "tests" / "fit"))
    from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics, make_avatar, render_clip

    from dlatrack_engine.colour import linear_to_srgb8
    from dlatrack_engine.fit.scene import FaceScene
    from dlatrack_engine.landmarks import LandmarkTrack

    avatar = make_avatar()
    package = avatar.to_package(root / "dome", provenance={"command": "tests/blender"})
    truth = gt_params(FRAMES)
    frames, _ = render_clip(avatar, truth)
    clip = root / "clip"
    (clip / "frames").mkdir(parents=True)
    for i, frame in enumerate(frames.numpy()):
        cv2.imwrite(str(clip / "frames" / f"{i:06d}.png"), cv2.cvtColor(linear_to_srgb8(frame), cv2.COLOR_RGB2BGR))
    (clip / "clip.json").write_text(json.dumps({"name": "dome", "fps": 24, "width": WIDTH, "height": HEIGHT}))
    np.savez(clip / "gt.npz", K=intrinsics().numpy())
    with torch.no_grad():
        marks = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT).landmarks_2d(truth).numpy()
    job = root / "job"
    job.mkdir()
    LandmarkTrack(marks, np.ones(marks.shape[:2], np.float32), np.ones(FRAMES, bool), "ground-truth").save(
        str(job / "landmarks.npz")
    )
    return package, clip / "frames", job


def test_batch_tracks_with_the_real_engine_saves_and_renders(tmp_path: Path) -> None:
    package, video, job = make_clip(tmp_path)
    blend = tmp_path / "out" / "scene.blend"
    args = ["--video", str(video), "--avatar", str(package), "--out", str(blend), "--job-dir", str(job),
            "--key-frames", "2", "--preset", "FAST", "--option", "steps=landmarks", "--option", "lighting=none",
            "--engine-python", sys.executable, "--render", str(tmp_path / "out" / "render" / "####.png"),
            "--render-samples", "2", "--timeout", "500", "--mirror"]  # fmt: skip
    done = subprocess.run(blender_command(REPO_ROOT / "blender_addon" / "batch.py", args),
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    manifest = json.loads((job / "manifest.json").read_text())
    assert manifest["state"] == "completed" and manifest["frames"] == list(range(FRAMES))
    assert sorted(p.name for p in (job / "frames").glob("*.npz")) == [f"{i:06d}.npz" for i in range(FRAMES)]
    # --mirror: the scene was written from a copy fetched over the socket (the remote-engine path).
    mirrors = list((tmp_path / "out").glob("job_*"))
    assert len(mirrors) == 1 and len(list((mirrors[0] / "frames").glob("*.npz"))) == FRAMES
    renders = sorted(p.name for p in (tmp_path / "out" / "render").glob("*.png"))
    assert renders == [f"{i:04d}.png" for i in range(1, FRAMES + 1)]
    saved = run_in_blender(SCRIPTS / "check_saved_blend.py", {"blend": str(blend), "job": str(job)}, timeout=120)
    assert saved["shape_keys"] == ["Basis"] + [f"frame_{i:04d}" for i in range(1, FRAMES + 1)]
    assert saved["range"] == [1, FRAMES]
    assert saved["images"]["full"] == "SEQUENCE"
    assert saved["background"] == [["SEQUENCE", -1]], "the clip's frames (000000.png...) behind the camera"
    assert saved["max_vertex_error"] < 1e-5, "the saved animation must reproduce the engine's vertices"
