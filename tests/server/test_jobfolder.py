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
    assert manifest.stages_done == ["init"] and isinstance(manifest.K, list) and np.array_equal(manifest.K, np.eye(3))
    assert JobFolder(folder.root).read_manifest().video == "a.mp4"
    with pytest.raises(JobFolderError, match="belongs to job 'j1', not 'j2'"):
        JobFolder.create(folder.root, "j2", "track")
    assert JobFolder.create(folder.root, "j1", "track").read_manifest().state == "running"  # resume reopens
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


# -- issue 19: the ledger of files the job wrote --------------------------------------------------------------
def test_only_recorded_files_that_still_match_count_as_done(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track")
    for index in range(3):
        folder.write_frame(index, _frame(index))
    (folder.root / "frames" / "000005.npz").write_bytes((folder.root / "frames" / "000001.npz").read_bytes())
    (folder.root / "frames" / "000002.npz").write_bytes(b"")  # truncated behind the job's back
    assert folder.frames_done() == [0, 1]  # 5 was never written by the job, 2 no longer matches
    with pytest.raises(JobFolderError, match=r"000002\.npz: changed since the job wrote it"):
        folder.read_frame(2)


def test_a_torn_ledger_line_is_ignored_and_appending_goes_on(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track")
    folder.write_frame(0, _frame(0))
    with open(folder.root / "files.jsonl", "ab") as handle:
        handle.write(b'{"path": "frames/000001.npz", "si')  # a kill mid-append
    again = JobFolder(folder.root)
    again.write_frame(2, _frame(2))
    assert again.frames_done() == [0, 2]


def test_verify_forgets_damaged_files_and_what_depends_on_them(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track")
    for index in range(2):
        folder.write_texture("full", index, np.zeros((4, 4, 3), np.uint8))
        folder.write_frame(index, _frame(index))
    folder.write_light_code(np.zeros(150, np.float32))
    folder.mark_stage_done("adapt")
    texture = folder.texture_path("full", 1)
    texture.write_bytes(b"\x89PNG" + texture.read_bytes()[4:-1] + b"\x00")  # same size, other bytes
    light = folder.light_code_path
    light.write_bytes(light.read_bytes()[:-4])
    damaged = folder.verify_files()
    assert sorted(damaged) == ["lighting/light_code.npy", "textures/full/000001.png"]
    assert folder.frames_done() == [0]  # the frame of the damaged texture is recomputed
    assert "adapt" not in folder.read_manifest().stages_done


def test_partial_writes_are_only_the_engines_own(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track")
    folder.write_frame(0, _frame(0))
    ours = [folder.root / "frames" / ".000001.npz.a1b2c3d4.tmp", folder.root / ".manifest.json.zz9_yy8x.tmp"]
    theirs = [
        folder.root / "frames" / ".notes.tmp",
        folder.root / ".backup.tmp",
        folder.root / "mine" / ".000001.npz.a1b2c3d4.tmp",
        folder.root / "frames" / ".000001.npz.tmp",
    ]
    for path in ours + theirs:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"x")
    assert folder.remove_partial_writes() == 2
    assert not any(p.exists() for p in ours) and all(p.exists() for p in theirs)


def test_a_new_folder_may_hold_only_checked_seed_inputs(tmp_path: Path) -> None:
    from dlatrack_engine.landmarks.base import LandmarkTrack

    seeded = tmp_path / "seeded"
    seeded.mkdir()
    track = LandmarkTrack(np.zeros((2, 68, 2), np.float32), np.ones((2, 68), np.float32), np.ones(2, bool), "gt")
    track.save(str(seeded / "landmarks.npz"))
    folder = JobFolder.create(seeded, "j1", "track")
    assert folder.trusted(seeded / "landmarks.npz")
    bad = tmp_path / "bad"
    bad.mkdir()
    np.savez(bad / "landmarks.npz", points=np.zeros((2, 5)))
    with pytest.raises(JobFolderError, match=r"landmarks\.npz: unusable seed input.*lacks"):
        JobFolder.create(bad, "j2", "track")
    other = tmp_path / "other"
    (other / "overlay").mkdir(parents=True)
    with pytest.raises(JobFolderError, match=r"not empty .*overlay"):
        JobFolder.create(other, "j3", "track")


def test_folders_from_before_the_ledger_are_read_as_before(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track")
    folder.write_frame(0, _frame(0))
    manifest = folder.read_manifest().to_dict()
    del manifest["files"]
    folder.write_manifest(manifest)
    (folder.root / "files.jsonl").unlink()
    old = JobFolder(folder.root)
    assert old.frames_done() == [0] and old.read_frame(0)["vertices"].shape == (5, 3)
    link = folder.root / "frames" / "000001.npz"
    link.symlink_to(folder.root / "frames" / "000000.npz")
    assert old.frames_done() == [0]  # never through a link


def test_manifest_fields_are_typed_and_unknown_keys_kept(tmp_path: Path) -> None:
    folder = JobFolder.create(tmp_path / "job", "j1", "track", video="a.mp4")
    with pytest.raises(JobFolderError, match=r"manifest\.json: field 'frames' is \[0, -1\], expected a list of frame"):
        folder.update_manifest(frames=[0, -1])
    with pytest.raises(JobFolderError, match=r"field 'K' is .*, expected a 3x3 matrix"):
        folder.update_manifest(K=np.eye(2))
    with pytest.raises(TypeError, match="unknown manifest field"):
        folder.update_manifest(framez=[1])
    assert folder.read_manifest().frames == []  # nothing bad was written
    # A newer engine's key survives a read-modify-write; an old manifest (no created/updated/files) reads.
    data = json.loads(folder.manifest_path.read_text())
    for key in ("created", "updated", "files"):
        del data[key]
    folder.manifest_path.write_text(json.dumps({**data, "from_the_future": {"x": 1}}))
    old = JobFolder(folder.root)
    assert old.legacy() and old.read_manifest().created is None
    old.update_manifest(state="running")
    written = json.loads(folder.manifest_path.read_text())
    assert written["from_the_future"] == {"x": 1} and written["state"] == "running" and "files" not in written
    data["state"] = 3
    folder.manifest_path.write_text(json.dumps(data))
    with pytest.raises(JobFolderError, match="field 'state' must be a string"):
        JobFolder(folder.root).read_manifest()
