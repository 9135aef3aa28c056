"""blender_addon/batch.py end to end: write a tracked job into a .blend and render it; with the real engine
on the sample clip when the sample avatar and clip exist."""

from __future__ import annotations

import subprocess
from pathlib import Path

import addon_synthetic as synthetic
import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.paths import REPO_ROOT, blender_command

pytestmark = pytest.mark.blender
BATCH = REPO_ROOT / "blender_addon" / "batch.py"


def run_batch(args: list[str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(blender_command(BATCH, args), capture_output=True, text=True, timeout=timeout, check=False)


def test_batch_writes_a_job_folder_saves_and_renders(tmp_path: Path) -> None:
    topology = synthetic.grid_topology(6)
    package = synthetic.write_avatar_package(tmp_path / "avatar", topology)
    synthetic.write_track_job(tmp_path / "job", topology, frames=3)
    blend, renders = tmp_path / "out" / "scene.blend", tmp_path / "out" / "render" / "####.png"
    done = run_batch(
        ["--avatar", str(package), "--job-folder", str(tmp_path / "job"), "--out", str(blend),
         "--render", str(renders), "--render-samples", "2"],
        timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert blend.is_file()
    assert sorted(p.name for p in renders.parent.glob("*.png")) == ["0001.png", "0002.png", "0003.png"]
    saved = run_in_blender(SCRIPTS / "check_saved_blend.py", {"blend": str(blend)}, timeout=120)
    assert saved["objects"] == ["CAMERA", "EMPTY", "MESH"], "only the avatar, its head empty and the camera"
    assert saved["engine"] == "CYCLES"
    assert saved["avatars"] == 1 and saved["parent"] == "DLATrack Head" and saved["camera"] == "DLATrack Camera"
    assert saved["shape_keys"] == ["Basis", "frame_0001", "frame_0002", "frame_0003"]
    assert saved["range"] == [1, 3]
    assert saved["background"] == []  # the synthetic job names no video
    assert saved["images"] == {"full": "SEQUENCE", "relit": "SEQUENCE"}


def test_batch_reports_a_missing_avatar(tmp_path: Path) -> None:
    done = run_batch(
        ["--avatar", str(tmp_path / "nope"), "--job-folder", str(tmp_path), "--out", str(tmp_path / "a.blend")], 120
    )
    assert done.returncode != 0
    assert "nope: no such avatar package" in done.stdout + done.stderr
