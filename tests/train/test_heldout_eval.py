"""Held-out evaluation helpers (train/heldout_eval.py, train/data.py): the same-pose fully-lit reference and
the oracle shading built on it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from shared_pose_toy import shared_pose_toy

from dlatrack_engine.train.data import same_pose_full_frames
from dlatrack_engine.train.heldout_eval import oracle_shading, results_markdown


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


def test_the_results_table_shows_adapted_g_against_sh_where_it_was_measured():
    seen = {"set": "seen", "samples": 2, "psnr_G": 30.0, "psnr_SH": 29.0, "psnr_G_minus_SH": 1.0,
            "psnr_G_minus_SH_ci": [0.5, 1.5], "psnr_G_wins": 1.0}  # fmt: skip
    unseen = {"set": "unseen", "samples": 4, "psnr_G": 28.0, "psnr_SH": 29.0, "psnr_G_adapted": 31.0,
              "psnr_G_minus_SH": -1.0, "psnr_G_minus_SH_ci": [-2.0, 0.25], "psnr_G_wins": 0.25,
              "psnr_G_adapted_minus_SH": 2.0, "psnr_G_adapted_minus_SH_ci": [1.0, 3.0],
              "psnr_G_adapted_wins": 0.75}  # fmt: skip
    table = results_markdown({"dam": [], "lighting": [seen, unseen]})
    header = next(line for line in table.splitlines() if line.startswith("| set | samples | PSNR G |"))
    assert "PSNR G adapted" in header and "G adapted − SH PSNR [95% CI], G adapted better" in header
    seen_row = next(line for line in table.splitlines() if line.startswith("| seen |"))
    unseen_row = next(line for line in table.splitlines() if line.startswith("| unseen |"))
    assert seen_row.endswith("| +1.00 [+0.50, +1.50], 2/2 | — |")  # no adaptation on seen patterns
    assert unseen_row.endswith("| -1.00 [-2.00, +0.25], 1/4 | +2.00 [+1.00, +3.00], 3/4 |")
    assert "| 31.00 |" in unseen_row
