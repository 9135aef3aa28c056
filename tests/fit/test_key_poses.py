"""Step 3's starts: refined key poses at key frames, the key corrections interpolated in time elsewhere."""

from __future__ import annotations

import math

import pytest
import torch

from dlatrack_engine.fit.key_poses import spread_key_corrections
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.geometry import axis_angle_to_matrix, matrix_to_axis_angle


def _clip(n: int = 9) -> FrameParams:
    s = torch.linspace(0, 1, n)
    r = torch.stack([math.pi - 0.1 * s, 0.3 * torch.sin(3 * s), 0.05 * s], -1)  # facing the camera: |r| ≈ π
    t = torch.stack([0.01 * s, -0.02 * s, 0.5 + 0.05 * s], -1)
    return FrameParams(r, t, torch.randn(n, 4, generator=torch.Generator().manual_seed(0)))


def _corrected(params: FrameParams, rows: list[int], angle: torch.Tensor, shift: torch.Tensor) -> FrameParams:
    """params at `rows`, rotated by axis-angle `angle` [3] in the camera frame and moved by `shift` [3]."""
    sub = params.select(rows)
    rotation = axis_angle_to_matrix(angle.expand(len(rows), 3)) @ sub.rotation()
    return FrameParams(matrix_to_axis_angle(rotation), sub.t + shift, sub.z + 1.0)


def _rotation_gap_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(matrix_to_axis_angle(a @ b.transpose(-1, -2)).norm(dim=-1))


def test_key_frames_start_from_their_refined_poses_and_others_keep_their_expression():
    init = _clip()
    keys = [2, 6]
    refined = _corrected(init, keys, torch.tensor([0.02, -0.01, 0.0]), torch.tensor([0.0, 0.0, -0.01]))
    starts = spread_key_corrections(init, keys, refined)
    assert torch.allclose(starts.select(keys).rotation(), refined.rotation(), atol=1e-6)
    assert torch.equal(starts.select(keys).t, refined.t)
    assert torch.equal(starts.select(keys).z, refined.z)
    others = [i for i in range(len(init)) if i not in keys]
    assert torch.equal(starts.select(others).z, init.select(others).z)


def test_one_correction_everywhere_moves_every_frame_by_it():
    """The same rigid correction at every key frame is applied as is to every frame, key or not (a constant
    detector bias is undone on the whole clip)."""
    init = _clip()
    angle, shift = torch.tensor([0.03, 0.01, -0.02]), torch.tensor([0.002, -0.001, 0.015])
    keys = [1, 4, 7]
    starts = spread_key_corrections(init, keys, _corrected(init, keys, angle, shift))
    everything = _corrected(init, list(range(len(init))), angle, shift)
    assert float(_rotation_gap_deg(starts.rotation(), everything.rotation()).max()) < 1e-3
    assert torch.allclose(starts.t, everything.t, atol=1e-7)


def test_corrections_are_interpolated_between_keys_and_held_beyond_them():
    init = _clip()
    keys = [2, 6]
    refined = torch.cat([_corrected(init, [2], torch.zeros(3), torch.tensor([0.0, 0.0, 0.010])).t,
                         _corrected(init, [6], torch.zeros(3), torch.tensor([0.0, 0.0, 0.030])).t])
    starts = spread_key_corrections(init, keys, FrameParams(init.r[keys], refined, init.z[keys]))
    depth_shift = (starts.t[:, 2] - init.t[:, 2]) * 1000.0  # mm
    expected = [10.0, 10.0, 10.0, 15.0, 20.0, 25.0, 30.0, 30.0, 30.0]
    assert depth_shift.tolist() == pytest.approx(expected, abs=1e-3)
    assert float(_rotation_gap_deg(starts.rotation(), init.rotation()).max()) < 1e-3


def test_no_key_frames_keeps_step_one_and_a_count_mismatch_is_refused():
    init = _clip()
    assert spread_key_corrections(init, [], init.select([])) is init
    with pytest.raises(ValueError, match="2 key frames but 1 refined"):
        spread_key_corrections(init, [0, 3], init.select([0]))
