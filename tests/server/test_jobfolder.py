"""Job folder: atomic per-frame files, manifest validation, resume guard, textures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError


def _frame(seed: int, vertices: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "vertices": rng.standard_normal((vertices, 3)),
        "head_R": np.eye(3),
        "head_t": np.array([0.0, 0.0, 0.5]),
        "r": np.zeros(3),
        "z": rng.standard_normal(4),
        "loss_pix": np.float32(0.25),
    }


def test_frames_are_atomic_float32_and_listed(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track", fps=30.0)
    (folder.root / "frames").mkdir()
    (folder.root / "frames" / ".000002.npz.abc.tmp").write_bytes(b"half a frame")  # an interrupted write
    folder.write_frame(3, _frame(3))
    folder.write_frame(1, _frame(1))
    assert folder.frames_done() == [1, 3]
    frame = folder.read_frame(3)
    assert frame["vertices"].dtype == np.float32 and float(frame["loss_pix"]) == 0.25
    np.testing.assert_allclose(frame["vertices"], _frame(3)["vertices"], rtol=1e-6)
    track = folder.read_track()
    assert track["vertices"].shape == (2, 5, 3) and list(track["frames"]) == [1, 3]
    assert folder.remove_partial_writes() == 1
    assert folder.frames_done() == [1, 3] and not list((folder.root / "frames").glob(".*"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"vertices": None}, "field 'vertices' missing"),
        ({"head_R": np.eye(4)}, r"field 'head_R' has shape \(4, 4\), expected \(3, 3\)"),
        ({"vertices": np.zeros((5, 2))}, "expected \\[V, 3\\]"),
        ({"z": np.zeros((2, 2))}, "field 'z' has shape"),
    ],
)
def test_track_frames_are_checked_with_named_fields(tmp_path: Path, change: dict, message: str) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track")
    data = _frame(0)
    for key, value in change.items():
        if value is None:
            del data[key]
        else:
            data[key] = value
    with pytest.raises(JobFolderError, match=message) as info:
        folder.write_frame(7, data)
    assert "000007.npz" in str(info.value)
    assert folder.frames_done() == []


def test_manifest_update_and_validation(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track", video="a.mp4")
    folder.mark_stage_done("init")
    folder.mark_stage_done("init")
    manifest = folder.update_manifest(state="running", K=np.eye(3))
    assert manifest["stages_done"] == ["init"] and manifest["K"] == np.eye(3).tolist()
    assert JobFolder(folder.root).read_manifest()["video"] == "a.mp4"
    with pytest.raises(JobFolderError, match="belongs to job 'j1', not 'j2'"):
        JobFolder.create(folder.root, "j2", "track")
    assert JobFolder.create(folder.root, "j1", "track").read_manifest()["state"] == "running"  # resume reopens
    data = json.loads(folder.manifest_path.read_text())
    data["format_version"] = 99
    folder.manifest_path.write_text(json.dumps(data))
    with pytest.raises(JobFolderError, match="'format_version' is 99, expected 1"):
        folder.read_manifest()
    with pytest.raises(JobFolderError, match="missing"):
        JobFolder(tmp_path / "nothing").read_manifest()


def test_textures_light_code_and_missing_files(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track")
    texture = np.arange(4 * 4 * 3, dtype=np.uint8).reshape(4, 4, 3)
    path = folder.write_texture("relit", 2, texture, view="cam_a")
    assert path == folder.root / "textures" / "view_cam_a" / "relit" / "000002.png"
    np.testing.assert_array_equal(folder.read_texture("relit", 2, view="cam_a"), texture)
    assert folder.texture_path("full", 2) == folder.root / "textures" / "full" / "000002.png"
    with pytest.raises(JobFolderError, match="texture kind 'albedo'"):
        folder.texture_path("albedo", 0)
    with pytest.raises(JobFolderError, match="lighting adaptation stage has not finished"):
        folder.read_light_code()
    folder.write_light_code(np.ones(150))
    assert folder.read_light_code().dtype == np.float32
    with pytest.raises(JobFolderError, match="frame 4 has not been written"):
        folder.read_frame(4)
    with pytest.raises(JobFolderError, match="non-negative integer"):
        folder.frame_path(-1)
