"""Relight for Camera under lighting that changes during the video (issue 18): decode_view relights each
frame of a job with a "sequence" lighting with that frame's own light code l_t."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import numpy as np
import torch
from conftest import Engine
from test_decode_view import FACING_CAMERA, HEAD_T, _expected, completed_job

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit import lighting_store
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.server.decode import view_vectors_from_camera


def test_relight_for_camera_follows_the_per_frame_lighting(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tmp_path: Path
) -> None:
    avatar = Avatar.load(tiny_avatar)
    rng = np.random.default_rng(2)
    z = rng.standard_normal(4).astype(np.float32)
    folder = completed_job(tmp_path / "job", [10, 11, 12], [z] * 3)  # the same face: only the lighting differs
    codes = rng.random((3, 150)).astype(np.float32)
    codes[:2, 75:] = 0.0  # frames 10-11: light from one half of the light-stage groups ...
    codes[2, :75] = 0.0  # ... frame 12: from the other half
    lighting = VideoLighting("G", avatar)
    lighting.set_frame_codes(torch.as_tensor(codes))
    with torch.no_grad():  # an adapted φ (the untrained G's output does not depend on the code)
        for p in lighting.network.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=torch.Generator().manual_seed(3)))
    avatar.lighting.load_state_dict(lighting.network.state_dict())  # what _expected relights with
    lighting_store.write(lighting_store.job_lighting_root(folder), lighting, avatar, folder.write_file,
                         {"key_frames": [0, 2], "key_source_frames": [10, 12], "variation": "sequence",
                          "frame_count": 3, "source_frames": [10, 11, 12], "segments": [[0, 2], [2, 3]]})
    camera = {"R": np.eye(3), "t": np.array([-0.3, 0.0, 0.0])}
    views = view_vectors_from_camera(camera["R"], camera["t"], np.stack([FACING_CAMERA] * 2), np.stack([HEAD_T] * 2))
    r = np.array([[0.0, np.pi, 0.0]] * 2, np.float32)
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        client.decode_view(avatar_id, folder=folder.root, frames=[10, 12], camera=camera, name="cam1", returns="none")
        arrays = client.decode_view(avatar_id, folder=folder.root, frames=[10, 12], camera=camera, returns="array")
    for k, index in enumerate([10, 12]):
        _, relit = _expected(avatar, np.stack([z, z]), r, views, codes[[0, 2][k]])
        np.testing.assert_allclose(arrays["relit_textures"][index], relit[k], rtol=1e-4, atol=1e-4)
        written = folder.read_texture("relit", index, view="cam1").astype(int)
        assert np.abs(written - linear_to_srgb8(relit[k]).astype(int)).max() <= 1
    # Same face, same view: the relit texture changes between frames 10 and 12 only because the light does.
    change = np.abs(arrays["relit_textures"][10] - arrays["relit_textures"][12]).max()
    assert change > 0.01, change
