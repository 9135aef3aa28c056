"""Track Video from the add-on's own sidebar in a real Blender window, with the preferences' *Remote
engine*: the engine runs as another "machine" (own HOME, TMPDIR and folders, `dlatrack serve --remote`),
the laptop's Blender knows only its copied connection file. The video and the avatar go up by upload, the
results and the job's preview.mp4 come back into the laptop's output folder (Show Comparison works there),
and the scene points only at laptop files (issue 24;
the headless twin is tests/blender/test_blender_remote_batch.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from crash_retry import with_crash_retry
from gui_runner import SCRIPTS, run_gui_blender

from dlatrack_engine.paths import SAMPLE_SCENES

NEEDS_OPENSSL = pytest.mark.skipif(
    shutil.which("openssl") is None,
    reason="an engine serving remote clients makes its TLS certificate with `openssl` (apt-get install openssl)",
)
pytestmark = [pytest.mark.blender_gui, pytest.mark.slow, NEEDS_OPENSSL]
CLIP = SAMPLE_SCENES / "clips" / "warm_key_cool_fill"
FRAMES = 2


def test_track_video_with_a_remote_engine(x_display: str, tmp_path: Path) -> None:
    box, laptop = tmp_path / "gpu-box", tmp_path / "laptop"
    for folder in (box / "home", box / "tmp", laptop / "footage"):
        folder.mkdir(parents=True)
    env = dict(os.environ, HOME=str(box / "home"), TMPDIR=str(box / "tmp"), OMP_NUM_THREADS="1")
    state = box / "state"
    engine = subprocess.Popen(
        [sys.executable, "-m", "dlatrack_engine.server", "--remote", "--state-dir", str(state), "--device", "cpu",
         "--threads", "1"], cwd=box, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for name in ("video.mp4", "gt.npz"):
            shutil.copy(CLIP / name, laptop / "footage" / name)
        shutil.copytree(SAMPLE_SCENES / "avatar", laptop / "avatar")
        deadline = time.monotonic() + 60
        while not (state / "connection.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.copy(state / "connection.json", laptop / "engine.json")
        args = {"engine_python": sys.executable, "jobs": str(laptop / "mirror"),
                "connection_file": str(laptop / "engine.json"), "package": str(laptop / "avatar"),
                "video": str(laptop / "footage" / "video.mp4"), "request": [0, FRAMES, "PREVIEW"]}  # fmt: skip
        result = with_crash_retry(
            "drive_remote", lambda _: run_gui_blender(SCRIPTS / "drive_remote.py", args, x_display, timeout=240)
        )
    finally:
        engine.terminate()
        engine.wait(30)
    assert result["import"] == ["FINISHED"] and result["connect"] == ["FINISHED"], result
    track = result["track"]
    assert track["engine_state"] == "completed" and track["final_status"] == "done", track
    assert len(track["frame_keys"]) == FRAMES and not result["assumed_focal"]
    mirror = Path(track["folder"])
    assert mirror.is_relative_to(laptop / "mirror") and track["frame_files"] == FRAMES
    assert result["backgrounds"] == [str(laptop / "footage" / "video.mp4")]
    assert result["images"] and all(Path(p).is_relative_to(mirror) and Path(p).is_file() for p in result["images"])
    previews = list(state.rglob("preview.mp4"))  # written by the engine in the job folder it chose
    assert len(previews) == 1 and previews[0].is_relative_to(state), previews
    assert result["job_folder"] == str(mirror) and (mirror / "preview.mp4").read_bytes() == previews[0].read_bytes()
    assert result["comparison"] == ["FINISHED"], result["comparison"]  # Show Comparison on the laptop's copy
    assert result["relight"] == ["FINISHED"]  # re-decoded on the engine, written into the laptop's mirror
    assert len(list((mirror / "textures" / "view_Side" / "full").glob("*.png"))) == FRAMES
    engine_records = "".join(p.read_text(errors="replace") for p in state.rglob("*.json"))
    assert str(laptop) not in engine_records  # no laptop path reached the engine
