"""Held-out evaluation helpers (train/evaluate.py, train/data.py): the same-pose fully-lit reference and
the oracle shading built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shared_pose_toy import shared_pose_toy

from dlatrack_engine.train.data import same_pose_full_frames
from dlatrack_engine.train.evaluate import oracle_shading


@pytest.fixture()
def toy():
    return shared_pose_toy()


def test_the_same_pose_fully_lit_frame_is_found_only_for_an_identical_pose(toy):
    assert same_pose_full_frames(toy, [1, 2, 4]) == {1: 3, 2: 3}, "frame 4 has no fully-lit twin"
    toy.head_t[2, 1] += 1e-6
    try:
        assert same_pose_full_frames(toy, [2]) == {}, "a moved head is not the same instant"
    finally:
        toy.head_t[2, 1] -= 1e-6


def test_oracle_shading_is_exact_where_the_render_matches_the_fully_lit_image():
    rng = np.random.default_rng(0)
    fully_lit = torch.tensor(rng.uniform(0.05, 1.0, (2, 6, 5, 3)), dtype=torch.float32)
    pattern = fully_lit * torch.tensor(rng.uniform(0.0, 0.3, (2, 6, 5, 3)), dtype=torch.float32)
    torch.testing.assert_close(oracle_shading(fully_lit, pattern, fully_lit), pattern)
    render = fully_lit * 1.1  # a DAM 10 % too bright stays 10 % too bright under any lighting
    torch.testing.assert_close(oracle_shading(render, pattern, fully_lit), pattern * 1.1)
    fully_lit[0, 0, 0] = 0.0  # a pixel black when fully lit: floored, never inf
    assert torch.isfinite(oracle_shading(render, pattern, fully_lit)).all()
