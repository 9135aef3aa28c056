"""bpy-free add-on I/O: PC2 files, avatar topology reading, job folder -> Blender-convention arrays."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import addon_synthetic as synthetic
import numpy as np
import pytest

from blender_addon.io import convert, pc2
from blender_addon.io.avatar import AvatarPackageError, read_avatar_mesh
from blender_addon.io.options import job_folder_name, track_options
from blender_addon.io.result import (
    TrackResult,
    scene_frame,
    sequence_image_user,
    shape_key_name,
    view_name,
    view_vectors_for_cameras,
)
from blender_addon.io.wire.jobfolder import JobFolderError


def test_pc2_round_trip_append_and_header(tmp_path: Path) -> None:
    frames = np.random.default_rng(0).normal(size=(5, 7, 3)).astype(np.float32)
    path = pc2.write_pc2(tmp_path / "a.pc2", frames[:2], start_frame=3.0)
    assert pc2.append_pc2(path, frames[2:]) == 5
    np.testing.assert_array_equal(pc2.read_pc2(path), frames)
    header = pc2.read_header(path)
    assert header == {"points": 7, "start_frame": 3.0, "sample_rate": 1.0, "samples": 5}
    raw = path.read_bytes()
    assert raw[:12] == b"POINTCACHE2\0" and struct.unpack("<i", raw[12:16])[0] == 1
    assert len(raw) == 32 + 5 * 7 * 12


def test_pc2_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = pc2.write_pc2(tmp_path / "b.pc2", np.zeros((2, 3, 3)))
    with pytest.raises(pc2.PC2Error, match=r"b\.pc2.*expected \[n, 3, 3\]"):
        pc2.append_pc2(path, np.zeros((1, 4, 3)))
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(pc2.PC2Error, match=r"b\.pc2.*header says 2 samples"):
        pc2.read_pc2(path)
    (tmp_path / "c.pc2").write_bytes(b"NOTACACHE000" + bytes(20))
    with pytest.raises(pc2.PC2Error, match="bad magic"):
        pc2.read_header(tmp_path / "c.pc2")


def test_avatar_mesh_from_folder_and_zip(tmp_path: Path) -> None:
    topology = synthetic.grid_topology(5)
    package = synthetic.write_avatar_package(tmp_path / "pkg", topology, name="Ada")
    mesh = read_avatar_mesh(package)
    assert mesh.name == "Ada" and mesh.texture_size == 16
    np.testing.assert_array_equal(mesh.faces, topology["faces"])
    np.testing.assert_allclose(mesh.neutral, convert.head_vertices_to_object(topology["neutral"]))
    archive = tmp_path / "pkg.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for name in ("avatar.json", "topology.npz"):
            handle.write(package / name, f"pkg/{name}")
    np.testing.assert_array_equal(read_avatar_mesh(archive).uvs, topology["uvs"])


def test_avatar_errors(tmp_path: Path) -> None:
    with pytest.raises(AvatarPackageError, match="no such avatar package"):
        read_avatar_mesh(tmp_path / "missing")
    topology = synthetic.grid_topology(4)
    topology["faces"] = topology["faces"] + 100
    package = synthetic.write_avatar_package(tmp_path / "bad", topology)
    with pytest.raises(AvatarPackageError, match=r"topology\.npz: 'faces' index outside"):
        read_avatar_mesh(package)
    (package / "topology.npz").unlink()
    with pytest.raises(AvatarPackageError, match=r"topology\.npz: missing"):
        read_avatar_mesh(package)


def test_track_result_converts_job_folder(tmp_path: Path) -> None:
    topology = synthetic.grid_topology(6)
    truth = synthetic.write_track_job(tmp_path / "job", topology, frames=12)
    result = TrackResult(tmp_path / "job")
    assert result.requested_frames() == list(range(12)) and result.frames_done() == list(range(12))
    frames = result.read()
    np.testing.assert_array_equal(frames.scene_frames, np.arange(1, 13))
    np.testing.assert_allclose(frames.vertices, convert.head_vertices_to_object(truth["vertices"]), atol=1e-6)
    # World positions of vertices via the object matrices equal the OpenCV-world points turned Z-up.
    world = np.einsum("nij,nvj->nvi", frames.matrices[:, :3, :3], frames.vertices) + frames.locations[:, None]
    cv_world = np.einsum("nij,nvj->nvi", truth["head_R"], truth["vertices"]) + truth["head_t"][:, None]
    np.testing.assert_allclose(world, cv_world @ convert.CV_WORLD_TO_BLENDER.T, atol=1e-5)
    camera = result.camera()
    assert (camera.width, camera.height, camera.fps) == (48, 64, 24.0)
    assert camera.data["sensor_fit"] == "VERTICAL"
    first, indices = result.texture_sequence("relit")
    assert first.name == "000000.png" and indices == list(range(12))
    assert result.texture_sequence("full", view="elsewhere") is None
    subset = result.read([3, 5])
    np.testing.assert_array_equal(subset.video_indices, [3, 5])


def test_track_result_errors_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(JobFolderError, match=r"manifest\.json: missing"):
        TrackResult(tmp_path)
    synthetic.write_track_job(tmp_path / "job", synthetic.grid_topology(3), frames=1, textures=False)
    result = TrackResult(tmp_path / "job")
    with pytest.raises(JobFolderError, match="field 'size'"):
        result.folder.update_manifest(size=[48])  # refused before it is written
    data = json.loads(result.folder.manifest_path.read_text())
    result.folder.manifest_path.write_text(json.dumps({**data, "size": [48]}))  # a damaged file
    with pytest.raises(JobFolderError, match=r"manifest\.json: field 'size' is \[48\], expected \[width, height\]"):
        result.refresh()


def test_frame_numbering_and_image_user() -> None:
    assert scene_frame(0) == 1 and shape_key_name(0) == "frame_0001" and shape_key_name(122) == "frame_0123"
    # Blender shows file number (scene_frame - frame_start + 1 + frame_offset); it must be the video index.
    user = sequence_image_user(first_video_index=10, count=5)
    for video_index in range(10, 15):
        shown = scene_frame(video_index) - user["frame_start"] + 1 + user["frame_offset"]
        assert shown == video_index
    assert user["frame_duration"] == 5


def test_view_vectors_for_a_camera_and_view_names(tmp_path: Path) -> None:
    truth = synthetic.write_track_job(tmp_path / "job", synthetic.grid_topology(3), frames=4, textures=False)
    frames = TrackResult(tmp_path / "job").read()
    # The video camera (Blender origin) must give the direction to the OpenCV origin in the head frame.
    views = view_vectors_for_cameras(frames, np.zeros(3))
    expected = np.einsum("nji,nj->ni", truth["head_R"], -truth["head_t"])
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(views, expected, atol=1e-5)
    assert views[0] @ [0, 0, 1] > 0.99  # frame 0 faces the camera: the view is the head's +Z
    assert view_name("Camera.001 left") == "Camera_001_left"


def test_track_options() -> None:
    assert track_options(5, 10, 48, "PAPER") == {"start": 5, "stop": 15, "key_frames": 48, "quality": "paper"}
    assert "stop" not in track_options(0, 0, 12, "FAST")
    assert track_options(0, 3, 1, "PREVIEW") == {"start": 0, "stop": 3, "key_frames": 1, "quality": "fast",
                                                 "steps": "landmarks", "lighting": "none"}  # fmt: skip
    with pytest.raises(ValueError, match="preset"):
        track_options(0, 0, 12, "ULTRA")


def test_job_folder_name_is_one_folder_per_request(tmp_path: Path) -> None:
    video, avatar = tmp_path / "My clip (take 2).mp4", tmp_path / "avatar"
    options = track_options(0, 30, 48, "FAST")
    name = job_folder_name(str(video), str(avatar), options)
    assert name.startswith("My_clip_take_2-") and "/" not in name
    # The same request (however the paths are spelled) resumes in the same folder ...
    assert job_folder_name(str(tmp_path / "." / video.name), str(avatar) + "/", dict(options)) == name
    # ... while another range, preset, video or avatar gets its own.
    others = {
        job_folder_name(str(video), str(avatar), track_options(0, 31, 48, "FAST")),
        job_folder_name(str(video), str(avatar), track_options(0, 30, 48, "PAPER")),
        job_folder_name(str(tmp_path / "other.mp4"), str(avatar), options),
        job_folder_name(str(video), str(tmp_path / "avatar2"), options),
    }
    assert name not in others and len(others) == 4
