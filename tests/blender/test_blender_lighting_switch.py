"""Lighting that changes during the video (issue 18), in Blender: the engine tracks a tiny clip whose light
drops to 30 % at a known frame (the default track: it finds the cut and lights each frame with its own l_t),
the add-on imports the avatar and writes the job into a scene (the writer Track Video uses), and Cycles renders
it. The relit image sequence follows the lighting frame by frame: the rendered face darkens across the switch,
and changes far less inside a segment. Relight for Camera, decoded by a real engine for a camera beside the
video's, does the same: each frame keeps its own l_t."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from blender_addon.io.engine_launch import EngineLaunch
from dlatrack_engine.paths import REPO_ROOT
from dlatrack_engine.wire.png import decode_png

pytestmark = pytest.mark.blender


def make_job(root: Path) -> tuple[Path, Path, int]:
    """(avatar package, job folder, first dark video frame): a G that l drives (fit_fixtures' responsive
    avatar), so the segment codes step 2 fits reproduce the drop."""
    sys.path.insert(0, str(REPO_ROOT / "tests" / "fit"))
    from fit_fixtures import responsive_avatar
    from switch_clip import SWITCH, track, write_switch_clip

    avatar = responsive_avatar()
    package = avatar.to_package(root / "dome", provenance={"command": "tests/blender"})
    marks = write_switch_clip(root / "clip", avatar)
    track(root / "clip", avatar, root / "job", marks)
    return package, root / "job", SWITCH


def face_colour(path: str) -> np.ndarray:
    """Mean RGB (0-255) of the rendered avatar: the opaque pixels of a transparent-film render."""
    rgba = decode_png(Path(path).read_bytes()).astype(float)
    face = rgba[..., 3] == 255
    assert face.sum() > 300, f"{path}: the avatar covers only {face.sum()} pixels"
    return rgba[face, :3].mean(axis=0)


def rendered_frames(switch: int) -> list[int]:
    """Video frames rendered: two in the lit segment, then two in the dark one, one frame apart (the head
    moves as much inside a segment as across the switch)."""
    return [switch - 2, switch - 1, switch, switch + 1]


def scene_frame(video_index: int) -> int:
    return video_index + 1  # the add-on's timeline (blender_addon.io.result.scene_frame)


def assert_follows_the_switch(renders: dict[str, str], switch: int, what: str) -> None:
    """Darker across the switch, by 10x more than between two frames inside either segment (measured: 52
    levels across and 2.4 inside from the video camera, 46 and 2.9 from the side camera)."""
    lit_a, lit_b, dark_a, dark_b = (face_colour(renders[str(scene_frame(i))]) for i in rendered_frames(switch))
    across = lit_b - dark_a
    inside = max(np.abs(lit_a - lit_b).mean(), np.abs(dark_a - dark_b).mean())
    assert (dark_a < 0.8 * lit_b).all(), f"{what}: the face must darken at the switch: {lit_b} -> {dark_a}"
    assert across.mean() > 10 * inside, f"{what}: across the switch {across}, inside a segment {inside:.2f}"


def test_renders_follow_a_light_switched_off(tmp_path: Path) -> None:
    state = tmp_path / "state"
    launch = EngineLaunch(sys.executable, state / "connection.json", ("--state-dir", str(state), "--device", "cpu"))
    try:
        package, job, switch = make_job(tmp_path)  # while the engine starts
        launch.wait()
        frames = [scene_frame(i) for i in rendered_frames(switch)]
        result = run_in_blender(SCRIPTS / "check_lighting_switch.py",
                                {"package": str(package), "job": str(job), "frames": frames, "out": str(tmp_path),
                                 "connection_file": str(state / "connection.json")}, timeout=240)  # fmt: skip
    finally:
        launch.process.terminate()
        launch.process.wait(20)
    assert_follows_the_switch(result["video"], switch, "relit image sequence")
    assert result["relight_status"] == ["FINISHED"]
    assert Path(result["side_relit_image"]).parent == job / "textures" / "view_Side_Cam" / "relit"
    assert_follows_the_switch(result["side"], switch, "Relight for Camera")
