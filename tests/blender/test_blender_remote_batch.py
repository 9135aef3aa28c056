"""Two "machines" on one host: a laptop running `batch.py --remote` headless, and a GPU box running
`dlatrack serve --remote`. Each has its own HOME, temp and working folder; the laptop knows only the
engine's connection file (copied, as with scp). Run as root (CI), the laptop is another user (`nobody`,
through setpriv) and the GPU box's folder is private to root, so the operating system itself keeps the
engine's files out of the client's reach; otherwise the two only have separate folders. The engine gets
the video, its calibration and the avatar by upload, never a laptop path. The real engine tracks 2 frames
of the sample clip with the sample avatar (step 1 only, to fit the test budget on 2 CPU cores), the
results stream back into a laptop folder, and the saved .blend must point only at laptop files: shape
keys, texture sequences, the camera background (the laptop's own video). The engine must have created
nothing outside its state folder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.paths import REPO_ROOT, SAMPLE_SCENES, blender_command

NEEDS_OPENSSL = pytest.mark.skipif(
    shutil.which("openssl") is None,
    reason="an engine serving remote clients makes its TLS certificate with `openssl` (apt-get install openssl)",
)
pytestmark = [pytest.mark.blender, pytest.mark.slow, NEEDS_OPENSSL]
FRAMES = 2
CLIP = SAMPLE_SCENES / "clips" / "warm_key_cool_fill"
NOBODY = 65534
OTHER_USER = os.name == "posix" and os.geteuid() == 0 and shutil.which("setpriv") is not None


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _environment(root: Path) -> dict[str, str]:
    """A process on this "machine": its own HOME, caches and temp folder."""
    for folder in (root / "home", root / "tmp"):
        folder.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("XDG_")}
    env.update(HOME=str(root / "home"), TMPDIR=str(root / "tmp"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONDONTWRITEBYTECODE="1")  # fmt: skip
    return env


@pytest.fixture
def laptop_root(tmp_path: Path) -> Iterator[Path]:
    """The laptop's folder: outside pytest's root-only temp folder when the laptop is another user."""
    if not OTHER_USER:
        yield tmp_path / "laptop"
        return
    root = Path(tempfile.mkdtemp(prefix="dlatrack-laptop-")) / "laptop"
    root.parent.chmod(0o755)  # a way in for the laptop's user; `laptop/` itself becomes theirs
    try:
        yield root
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


def _as_laptop(command: list[str]) -> list[str]:
    return ["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups", *command] if OTHER_USER \
        else command  # fmt: skip


def _gt_focal() -> float:
    with np.load(CLIP / "gt.npz") as data:
        return float(data["K"][0, 0])


def test_batch_remote_uploads_mirrors_and_leaks_no_laptop_path(tmp_path: Path, laptop_root: Path) -> None:
    box, laptop = tmp_path / "gpu-box", laptop_root
    box_env, laptop_env = _environment(box), _environment(laptop)
    box.chmod(0o700)
    state = box / "state"
    engine = subprocess.Popen(
        [sys.executable, "-m", "dlatrack_engine.server", "-v", "--remote", "--state-dir", str(state),
         "--device", "cpu", "--threads", "1"],
        cwd=box, env=box_env, stdout=subprocess.DEVNULL, stderr=(box / "engine.log").open("wb"),
    )  # fmt: skip
    try:
        footage = laptop / "footage"
        footage.mkdir()
        for name in ("video.mp4", "clip.json", "gt.npz"):  # the clip and its calibration, on the laptop only
            shutil.copy(CLIP / name, footage / name)
        shutil.copytree(SAMPLE_SCENES / "avatar", laptop / "avatars" / "sample")
        connection = state / "connection.json"
        deadline = time.monotonic() + 60
        while not connection.exists() and engine.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.copy(connection, laptop / "engine.json")  # scp gpu-box:state/connection.json laptop/
        if OTHER_USER:
            for path in [laptop, *laptop.rglob("*")]:
                os.chown(path, NOBODY, NOBODY)
            peek = subprocess.run(_as_laptop(["cat", str(connection)]), capture_output=True, check=False)
            assert peek.returncode != 0  # the engine's files are out of the laptop's reach
        box_before = _tree(box) - {p for p in _tree(box) if p.startswith("state")}

        blend = laptop / "scenes" / "take.blend"
        args = ["--video", "footage/video.mp4", "--avatar", "avatars/sample", "--out", "scenes/take.blend",
                "--remote", "--connection-file", "engine.json", "--frames", f"0:{FRAMES}", "--key-frames", "2",
                "--preset", "FAST", "--option", "steps=landmarks", "--option", "lighting=none",
                "--timeout", "300"]  # fmt: skip
        command = _as_laptop(blender_command(REPO_ROOT / "blender_addon" / "batch.py", args))
        done = subprocess.run(command, cwd=laptop, env=laptop_env, capture_output=True, text=True, timeout=400,
                              check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
        assert "no camera calibration" not in done.stderr + done.stdout  # gt.npz's K travelled with it
    finally:
        engine.terminate()
        engine.wait(30)

    saved = run_in_blender(SCRIPTS / "check_remote_blend.py", {"blend": str(blend)}, timeout=120)
    assert saved["shape_keys"] == ["Basis"] + [f"frame_{i:04d}" for i in range(1, FRAMES + 1)]
    mirror = (laptop / "scenes" / "take.dlatrack").resolve()
    assert saved["textures"] and all(t["source"] == "SEQUENCE" for t in saved["textures"].values())
    for texture in saved["textures"].values():  # the mirrored job folder, on the laptop
        assert texture["exists"] and Path(texture["path"]).is_relative_to(mirror), texture
    assert [b["path"] for b in saved["backgrounds"]] == [str((footage / "video.mp4").resolve())]
    assert all(image["exists"] for image in saved["all_images"]), saved["all_images"]

    manifest = json.loads((mirror / "manifest.json").read_text())
    assert manifest["state"] == "completed" and manifest["K_source"].endswith("clip.json")
    assert manifest["K"][0][0] == pytest.approx(_gt_focal(), rel=1e-6)
    # The engine: no laptop path anywhere in what it stored, nothing created outside its state folder.
    for path in state.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".log"):
            assert str(laptop) not in path.read_text(errors="replace"), path
    assert _tree(box) - {p for p in _tree(box) if p.startswith("state")} == box_before
    assert not list(state.glob("uploads/*/video.mp4"))  # the job's copy went with the job
