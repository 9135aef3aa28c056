"""The avatar material renders in Eevee too: the written scene's relit sequence follows the frame (64²)."""

from __future__ import annotations

from pathlib import Path

import pytest
from blender_data import assert_renders_follow_textures, make_synthetic_job
from crash_retry import with_crash_retry
from gui_runner import SCRIPTS, run_gui_blender

from dlatrack_engine.paths import REPO_ROOT

pytestmark = pytest.mark.blender_gui


def test_eevee_render_follows_texture_sequence_and_relit_switch(x_display: str, tmp_path: Path) -> None:
    def attempt(n: int) -> dict:
        work = tmp_path / f"attempt{n}"
        work.mkdir()
        args = {**make_synthetic_job(work), "repo": str(REPO_ROOT)}
        return run_gui_blender(SCRIPTS / "render_eevee.py", args, x_display, timeout=180)

    paths = with_crash_retry("render_eevee", attempt)
    assert paths["engine"].startswith("BLENDER_EEVEE")
    assert "Traceback" not in paths["stderr"], paths["stderr"][-3000:]
    assert_renders_follow_textures(paths)
