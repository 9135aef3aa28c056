"""Show Comparison in Blender (bpy wheel): the job's preview.mp4 as a Video Sequencer strip (issue 21)."""

from __future__ import annotations

import numpy as np
import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.report.video import encode_mp4
from dlatrack_engine.wire.jobfolder import JobFolder

pytestmark = pytest.mark.blender
FRAMES, SIZE = 7, (96, 64)


def test_show_comparison_loads_the_preview_in_step_with_the_track(tmp_path):
    folder = JobFolder.create(tmp_path / "job", "abc", "track")
    folder.update_manifest(frames=list(range(10, 10 + FRAMES)),
                           metrics={"preview": {"file": "preview.mp4", "psnr": 28.0, "lost_frames": []}})
    colours = (np.arange(FRAMES)[:, None, None, None] * 30 + np.zeros((FRAMES, SIZE[1], SIZE[0], 3))).astype(np.uint8)
    encode_mp4(iter(colours), folder.root / "preview.mp4", 24.0)
    JobFolder.create(tmp_path / "empty", "def", "track")
    args = {"job": str(folder.root), "empty_job": str(tmp_path / "empty")}
    out = run_in_blender(SCRIPTS / "check_comparison.py", args, timeout=120)
    assert "no preview.mp4" in out["refused"][0]
    assert out["results"] == [["FINISHED"], ["FINISHED"]]
    assert len(out["strips"]) == 1  # the second press replaced the first strip
    strip = out["strips"][0]
    assert strip["type"] == "MOVIE" and strip["path"] == str(folder.root / "preview.mp4")
    assert strip["start"] == 11 and strip["duration"] == FRAMES  # source frame 10 is scene frame 11
