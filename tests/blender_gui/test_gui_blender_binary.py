"""The bpy-wheel checks of tests/blender, run in the `blender` binary (Debian's 3.4.1, the oldest `bl_info`
accepts): writing 100 frames by shape keys and by PC2, the camera, the sequences and a Cycles render at 64²."""

from __future__ import annotations

from pathlib import Path

import pytest
from blender_data import FRAMES, SCRIPTS, assert_renders_follow_textures, make_synthetic_job
from crash_retry import run_in_blender_retrying

pytestmark = pytest.mark.blender_gui


def test_addon_writes_and_renders_in_the_blender_binary(in_blender_binary: None, tmp_path: Path) -> None:
    job = make_synthetic_job(tmp_path)
    checks = run_in_blender_retrying(SCRIPTS / "check_addon.py", job, tmp_path)
    assert checks["register_cycles_ok"] == [True, True, True, True]
    assert checks["import"]["neutral_error"] < 1e-6 and checks["import"]["uv_error"] < 1e-6
    for mode in ("shape_keys", "mesh_cache"):
        assert checks[mode]["local_error"] < 1e-5 and checks[mode]["world_error"] < 1e-5, mode
    assert checks["shape_keys"]["count"] == FRAMES + 1
    assert checks["camera_pixel_error"] < 1e-3
    assert checks["sequences"]["relit"]["shown"] == [0, 1, 49]
    paths = run_in_blender_retrying(SCRIPTS / "check_render.py", job, tmp_path)
    assert paths["engine"] == "CYCLES"
    assert_renders_follow_textures(paths)
