"""A Cycles render of the written scene shows the relit texture sequence, frame by frame."""

from __future__ import annotations

import pytest
from blender_data import SCRIPTS, assert_renders_follow_textures
from blender_runner import run_in_blender

pytestmark = pytest.mark.blender


def test_cycles_render_follows_texture_sequence_and_relit_switch(synthetic_job: dict[str, str]) -> None:
    paths = run_in_blender(SCRIPTS / "check_render.py", synthetic_job, timeout=240)
    assert paths["engine"] == "CYCLES"
    assert_renders_follow_textures(paths)
