"""The avatar material renders in Eevee too: the written scene's relit sequence follows the frame (64²)."""

from __future__ import annotations

import pytest
from blender_data import assert_renders_follow_textures, make_synthetic_job
from gui_runner import SCRIPTS, run_gui_blender

from dlatrack_engine.paths import REPO_ROOT

pytestmark = pytest.mark.blender_gui


def test_eevee_render_follows_texture_sequence_and_relit_switch(x_display: str, tmp_path) -> None:
    args = {**make_synthetic_job(tmp_path), "repo": str(REPO_ROOT)}
    paths = run_gui_blender(SCRIPTS / "render_eevee.py", args, x_display, timeout=180)
    assert paths["engine"].startswith("BLENDER_EEVEE")
    assert "Traceback" not in paths["stderr"], paths["stderr"][-3000:]
    assert_renders_follow_textures(paths)
