"""The sidebar's remote Track Video run, in Blender against a fake engine with slow uploads: Blender is
never kept waiting, Cancel stops the upload between chunks, an engine's refusal becomes the job's error,
and a finished upload hands over to the TrackRun mirroring into the laptop folder (issue 24)."""

from __future__ import annotations

from pathlib import Path

import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.paths import SAMPLE_SCENES

pytestmark = pytest.mark.blender


def test_remote_run_uploads_in_the_background(tmp_path: Path) -> None:
    video = tmp_path / "laptop" / "take.mp4"
    video.parent.mkdir()
    video.write_bytes(bytes(12 << 20))  # three 4 MiB chunks
    args = {"video": str(video), "package": str(SAMPLE_SCENES / "avatar"), "mirror": str(tmp_path / "mirror")}
    out = run_in_blender(SCRIPTS / "check_remote_run.py", args, timeout=120)
    assert out["first_pump_s"] < 0.05 and out["first"] == ["queued", False]  # hashing and uploading: not here
    state, text, fraction, finished = out["during"]
    assert state == "queued" and text.startswith("uploading ") and text.endswith("/12 MiB") and not finished
    assert 0 < fraction < 1
    assert out["cancelled"][:2] == ["cancelled", "upload stopped"] and out["cancelled"][2] < 3
    assert out["cancelled"][3] is None  # no job was queued
    assert out["refused"] == ["failed", "upload failed: [storage_full] upload_begin: the engine's upload store is full"]
    handed = out["handed_over"]
    assert handed["job_id"] == handed["scene_job"] == "job_1" and handed["chunks"] == 3
    assert handed["folder"] == str(tmp_path / "mirror" / "job_job_1")  # the laptop folder, not the engine's
    assert handed["tracked"] == {"video_path": None, "video_upload": handed["tracked"]["video_upload"],
                                 "calibration": None} and handed["assumed_focal"]  # fmt: skip
