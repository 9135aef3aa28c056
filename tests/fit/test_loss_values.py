"""Eq. 6-8 and the motion prior on hand-computed values, per frame in a batch whose frames differ, at the
clamps and sizes where a wrong axis or bound shows."""

from __future__ import annotations

import pytest
import torch

from dlatrack_engine.fit.losses import acceleration_penalty, flow_loss, landmark_loss, pixel_loss
from dlatrack_engine.geometry import axis_angle_to_matrix


def test_landmark_loss_is_the_weighted_sum_of_squared_distances_per_frame():
    projected = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [0.0, 0.0]], [[0.0, 0.0], [2.0, 0.0], [0.0, 5.0]]])
    detected = torch.tensor([[[1.0, 1.0], [1.0, 4.0], [0.0, 3.0]], [[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]]])
    # squared distances: frame 0: 1, 4, 9; frame 1: 0, 4, 25
    assert landmark_loss(projected, detected).tolist() == [14.0, 29.0]
    weight = torch.tensor([[1.0, 0.5, 0.0], [2.0, 0.25, 1.0]])
    assert landmark_loss(projected, detected, weight).tolist() == [3.0, 26.0]


def test_pixel_loss_per_frame_with_the_laplacian_at_weight_one():
    frame = torch.zeros(2, 3, 3, 3)
    frame[0, 1, 1] = 0.4
    render = torch.full((2, 3, 3, 3), 0.1)
    mask = torch.zeros(2, 3, 3, 1)
    mask[0, 1, 1] = 1.0  # frame 0: the centre pixel alone, residual 0.3 in each channel
    mask[1] = 0.5  # frame 1: every pixel at half weight, residual -0.1
    levels = 0.3 * 255
    # frame 0: data 3 x levels; the masked residual's Laplacian at the centre is -4 x levels (only it is kept)
    # frame 1: data 27 x 0.05 x 255; the residual is constant so its Laplacian is 0; count 3 x 4.5
    data_only = pixel_loss(frame, render, mask, 0.0)
    assert data_only.tolist() == pytest.approx([3 * levels / 3, 27 * 0.05 * 255 / 13.5], rel=1e-5)
    with_lap = pixel_loss(frame, render, mask, 1.0)
    assert with_lap.tolist() == pytest.approx([(3 + 12) * levels / 3, 27 * 0.05 * 255 / 13.5], rel=1e-5)


def test_pixel_and_flow_losses_divide_by_at_least_one_covered_pixel_or_vertex():
    frame, render = torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, 3)
    render[0, 0, 0] = 0.2
    mask = torch.zeros(1, 2, 2, 1)
    mask[0, 0, 0] = 0.5  # Σw = 0.5 is counted as 1
    assert float(pixel_loss(frame, render, mask, 0.0)) == pytest.approx(3 * 0.1 * 255 / 3)
    init = torch.zeros(2, 3, 2)
    moved = torch.tensor([[[3.0, 4.0], [1.0, 0.0], [0.0, 0.0]], [[0.0, 1.0], [0.0, 2.0], [0.0, 0.0]]])
    visible = torch.tensor([[0.5, 0.0, 0.0], [1.0, 1.0, 1.0]])
    out = flow_loss(moved, init, torch.zeros_like(init), visible)
    assert out.tolist() == pytest.approx([0.5 * 25 / 1.0, (1 + 4) / 3])


def test_acceleration_penalty_values_shapes_and_short_sequences():
    angles = torch.tensor([0.0, 0.0, 0.1, 0.0, 0.0, 0.0], dtype=torch.float64)
    rotation = axis_angle_to_matrix(torch.stack([torch.zeros(6, dtype=torch.float64), torch.zeros(6,
                                                 dtype=torch.float64), angles], -1))
    translation = torch.zeros(6, 3, dtype=torch.float64)
    rot, trans = acceleration_penalty(rotation, translation)
    # a roll of 0.1 rad at frame 2: ΔR = R(0.1) − I has ‖·‖²_F = 4(1 − cos 0.1); second differences (1, -2, 1)
    bump = 4 * (1 - torch.cos(torch.tensor(0.1, dtype=torch.float64)))
    assert torch.allclose(rot, torch.stack([0 * bump, bump, 4 * bump, bump, 0 * bump, 0 * bump]), atol=1e-12)
    assert trans.shape == (6,) and float(trans.abs().max()) == 0.0
    # frames 0, 2, 4, ... at times 2k: the same bump is 4x smaller per frame², 16x in the square
    times = 2.0 * torch.arange(6, dtype=torch.float64)
    assert torch.allclose(acceleration_penalty(rotation, translation, times)[0], rot / 16.0, atol=1e-12)
    three = acceleration_penalty(rotation[1:4], translation[1:4] + torch.tensor([0.0, 0.0, 1.0]) * angles[1:4, None])
    assert torch.allclose(three[0], torch.stack([0 * bump, 4 * bump, 0 * bump]), atol=1e-12)
    assert torch.allclose(three[1], torch.tensor([0.0, 0.04, 0.0], dtype=torch.float64), atol=1e-12)
    for n in (1, 2):
        short = acceleration_penalty(rotation[:n], translation[:n])
        assert short[0].shape == short[1].shape == (n,)
