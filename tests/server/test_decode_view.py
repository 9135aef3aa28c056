"""decode_view: textures for a new viewpoint, checked against the avatar evaluated in this process."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch
from conftest import Engine

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.server.decode import view_vectors_from_camera
from dlatrack_engine.wire.jobfolder import JobFolder
from dlatrack_engine.wire.png import decode_png

FACING_CAMERA = np.diag([-1.0, 1.0, -1.0])  # head +Z (out of the face) along camera -Z: looking at the camera
HEAD_T = np.array([0.0, 0.0, 0.6])


def completed_job(root: Path, frames: list[int], zs) -> JobFolder:
    """A finished job whose `frames` hold the head facing the camera 0.6 m away, with expression codes zs."""
    folder = JobFolder.create(root, "finished-job", "track", state="completed")
    for i, z in zip(frames, zs, strict=True):
        folder.write_frame(i, {"vertices": np.zeros((36, 3)), "head_R": FACING_CAMERA, "head_t": HEAD_T,
                               "r": np.array([0.0, np.pi, 0.0]), "z": z})
    return folder


def test_view_vector_points_from_head_to_camera_in_the_head_frame() -> None:
    head_t = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 0.5]])
    quarter = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])  # 90° about +Y
    head_R = np.stack([FACING_CAMERA, FACING_CAMERA @ quarter])
    views = view_vectors_from_camera(np.eye(3), np.zeros(3), head_R, head_t)
    np.testing.assert_allclose(views[0], [0, 0, 1], atol=1e-7)  # camera straight ahead of the face
    np.testing.assert_allclose(views[1], quarter.T @ [0, 0, 1], atol=1e-7)
    # A camera moved 0.5 m to the subject's left (world -X, since the head faces the camera) sees v ~ +X+Z.
    moved = view_vectors_from_camera(np.eye(3), np.array([0.5, 0.0, 0.0]), head_R[:1], head_t[:1])
    np.testing.assert_allclose(moved[0], np.array([1.0, 0.0, 1.0]) / np.sqrt(2), atol=1e-7)


def _expected(avatar: Avatar, z: np.ndarray, r: np.ndarray, view: np.ndarray, light_code: np.ndarray):
    with torch.no_grad():
        _, full = avatar.decode(torch.as_tensor(z), torch.as_tensor(view))
        head_view = torch.cat([torch.as_tensor(r), torch.as_tensor(view)], -1)
        relit, _, _ = avatar.relight(full, torch.as_tensor(light_code)[None].expand(len(z), -1), head_view)
    return full.permute(0, 2, 3, 1).numpy(), relit.permute(0, 2, 3, 1).numpy()


def test_decode_view_from_codes_matches_the_avatar(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path
) -> None:
    rng = np.random.default_rng(0)
    z = rng.standard_normal((3, 4)).astype(np.float32)
    r = (0.2 * rng.standard_normal((3, 3))).astype(np.float32)
    light_code = rng.random(150).astype(np.float32)
    view = np.array([0.3, 0.1, 1.0], np.float32)
    unit = np.broadcast_to(view / np.linalg.norm(view), (3, 3)).astype(np.float32)
    full, relit = _expected(Avatar.load(tiny_avatar), z, r, unit, light_code)
    assert np.abs(relit - full).max() > 1e-3  # G does something, so the comparison below means something
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        assert client.status()["threads"] == 1  # the engine honours --threads once torch is loaded
        codes = {"z": z, "r": r, "light_code": light_code}
        arrays = client.decode_view(avatar_id, view=view, codes=codes, returns="array")
        assert arrays["frames"] == [0, 1, 2] and arrays["relit"] is True
        for i in range(3):
            np.testing.assert_allclose(arrays["full"][i], full[i], atol=1e-5)
            np.testing.assert_allclose(arrays["relit_textures"][i], relit[i], atol=1e-5)
        pngs = client.decode_view(avatar_id, view=view, codes=codes)
        decoded = decode_png(pngs["relit_textures"][2])
        assert decoded.shape == (16, 16, 3)
        assert np.abs(decoded.astype(int) - linear_to_srgb8(relit[2]).astype(int)).max() <= 1
        with pytest.raises(client_mod.EngineError, match="latent size is 4"):
            client.decode_view(avatar_id, view=view, codes={"z": np.zeros((1, 5), np.float32)})
        with pytest.raises(client_mod.EngineError, match="'view' must be non-zero"):
            client.decode_view(avatar_id, view=[0, 0, 0], codes={"z": z})
        with pytest.raises(client_mod.EngineError, match="needs 'view'"):
            client.decode_view(avatar_id, codes={"z": z})
        with pytest.raises(client_mod.EngineError, match="'view' has 2 rows; expected 1 or one per frame"):
            client.decode_view(avatar_id, view=[[0, 0, 1], [0, 1, 0]], codes={"z": z})


def test_decode_view_for_a_camera_writes_into_the_job_folder(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tmp_path: Path
) -> None:
    avatar = Avatar.load(tiny_avatar)
    rng = np.random.default_rng(1)
    zs = rng.standard_normal((3, 4)).astype(np.float32)
    folder = completed_job(tmp_path / "job", [0, 1, 2], zs)
    light_code = rng.random(150).astype(np.float32)
    folder.write_light_code(light_code)
    # An adapted G (step 2 writes lighting/G.safetensors): perturb the avatar's weights and save them.
    from safetensors.torch import save_file

    adapted = {k: v + 0.1 * torch.randn_like(v) for k, v in avatar.lighting.state_dict().items()}
    save_file({k: v.contiguous() for k, v in adapted.items()}, str(folder.lighting_weights_path))
    avatar.lighting.load_state_dict(adapted)

    camera = {"R": np.eye(3), "t": np.array([-0.3, 0.0, 0.0])}  # camera centre 0.3 m along world +X
    views = view_vectors_from_camera(camera["R"], camera["t"], np.stack([FACING_CAMERA] * 2), np.stack([HEAD_T] * 2))
    full, relit = _expected(avatar, zs[[0, 2]], np.array([[0.0, np.pi, 0.0]] * 2, np.float32), views, light_code)
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        result = client.decode_view(
            avatar_id, folder=folder.root, frames=[0, 2], camera=camera, name="cam1", returns="none"
        )
        assert result["full"] == {} and len(result["written"]) == 4
        for k, index in enumerate([0, 2]):
            written = folder.read_texture("relit", index, view="cam1")
            assert np.abs(written.astype(int) - linear_to_srgb8(relit[k]).astype(int)).max() <= 1
            written_full = folder.read_texture("full", index, view="cam1")
            assert np.abs(written_full.astype(int) - linear_to_srgb8(full[k]).astype(int)).max() <= 1
        with pytest.raises(client_mod.EngineError, match="frame 5 has not been written"):
            client.decode_view(avatar_id, folder=folder.root, frames=[5], view=[0, 0, 1])
        with pytest.raises(client_mod.EngineError, match="'name'"):
            client.decode_view(avatar_id, folder=folder.root, frames=[0], view=[0, 0, 1], name="../x")
