"""The add-on's stored lightings without bpy: what a finished adapt job leaves, and track options reusing it."""

from __future__ import annotations

from pathlib import Path

import pytest

from blender_addon.io.lightings import adapted_lighting, with_lighting
from blender_addon.io.options import track_options
from blender_addon.io.wire.jobfolder import atomic_write_bytes
from blender_addon.io.wire.lighting_folder import LightingFolderError, LightingInfo, write_folder


def _adapt_job(root: Path, preview: bool = True) -> Path:
    info = LightingInfo(model="G", avatar={"sha256": "a"}, lighting_model={"sha256": "g"}, key_frames=[0, 4],
                        key_source_frames=[10, 14], video="take_a.mp4")  # fmt: skip
    files = {"light_code.npy": b"code", **({"preview.png": b"png"} if preview else {})}
    write_folder(root / "lighting", info, files, atomic_write_bytes)
    return root


def test_a_finished_adapt_job_becomes_a_stored_lighting(tmp_path: Path) -> None:
    lighting = adapted_lighting(str(_adapt_job(tmp_path / "job")), "take_a.mp4")
    assert lighting.folder == str(tmp_path / "job" / "lighting") and lighting.model == "G"
    assert lighting.key_frames == [10, 14] and lighting.preview == str(tmp_path / "job" / "lighting" / "preview.png")
    assert adapted_lighting(str(_adapt_job(tmp_path / "job2", preview=False)), "v").preview is None
    remote = adapted_lighting("/elsewhere/job", "v")  # an engine on another machine: its path, no preview
    assert remote.folder == "/elsewhere/job/lighting" and remote.preview is None


def test_an_unfinished_adapt_job_is_named(tmp_path: Path) -> None:
    (tmp_path / "job" / "lighting").mkdir(parents=True)
    with pytest.raises(LightingFolderError, match=r"lighting\.json: missing"):
        adapted_lighting(str(tmp_path / "job"), "v")


def test_track_options_reuse_a_lighting_or_adapt_anew() -> None:
    options = track_options(0, 10, 8, "FAST")
    assert "lighting_from" not in with_lighting(options, None)
    assert with_lighting(options, "/jobs/a/lighting")["lighting_from"] == "/jobs/a/lighting"
    with pytest.raises(ValueError, match="Preview"):
        with_lighting(track_options(0, 10, 8, "PREVIEW"), "/jobs/a/lighting")


def test_batch_passes_lighting_from(tmp_path: Path) -> None:
    from blender_addon.batch import parse_args

    args = parse_args(["--video", "v.mp4", "--avatar", "a", "--out", "s.blend", "--lighting-from", "adapt_a"])
    assert args.lighting_from == "adapt_a"
