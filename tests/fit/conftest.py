"""Fixtures for the registration tests (helpers live in fit_fixtures.py so tests can import them)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch
from fit_fixtures import FRAMES, HEIGHT, WIDTH, gt_params, intrinsics, make_avatar, render_clip

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit.scene import FaceScene


@pytest.fixture(scope="session")
def avatar() -> Avatar:
    return make_avatar()


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory, avatar):
    root = tmp_path_factory.mktemp("clip")
    truth = gt_params(FRAMES)
    frames, _ = render_clip(avatar, truth)
    (root / "frames").mkdir()
    for i, frame in enumerate(frames.numpy()):
        cv2.imwrite(str(root / "frames" / f"{i:06d}.png"), cv2.cvtColor(linear_to_srgb8(frame), cv2.COLOR_RGB2BGR))
    (root / "clip.json").write_text(json.dumps({"name": "tiny", "fps": 24, "width": WIDTH, "height": HEIGHT}))
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    with torch.no_grad():
        marks = scene.landmarks_2d(truth).numpy()
    with torch.no_grad():
        vertices = scene.geometry(truth.z).numpy()
    np.savez(root / "gt.npz", K=intrinsics().numpy(), vertices=vertices, head_R=truth.rotation().numpy(),
             head_t=truth.t.numpy())
    noise = np.random.default_rng(0).normal(0, 1.0, marks.shape).astype(np.float32)
    return root, marks + noise
