"""Eq. 6-8 losses: values on hand-made cases and finite-difference gradient checks (float64)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlatrack_engine.fit.flow import dis_flow, sample_at, vertex_flow
from dlatrack_engine.fit.keyframes import select_key_frames
from dlatrack_engine.fit.losses import (
    acceleration_penalty,
    flow_loss,
    landmark_loss,
    laplacian,
    pixel_loss,
    second_difference,
)
from dlatrack_engine.geometry import axis_angle_to_matrix


def test_laplacian_of_a_quadratic_is_constant_inside():
    y, x = torch.meshgrid(torch.arange(8.0), torch.arange(9.0), indexing="ij")
    image = (x**2 + 2 * y**2)[None, :, :, None].double()
    lap = laplacian(image)[0, 1:-1, 1:-1, 0]
    assert torch.allclose(lap, torch.full_like(lap, 6.0))
    assert torch.equal(laplacian(torch.ones(1, 5, 5, 3)), torch.zeros(1, 5, 5, 3))


def test_laplacian_matches_a_replicate_padded_convolution_and_its_gradient_is_exact():
    """The shifted-slice Laplacian against the 3 x 3 kernel it replaces, borders and channels included."""
    image = torch.randn(2, 7, 9, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    kernel = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    planes = torch.nn.functional.pad(image.permute(0, 3, 1, 2).reshape(6, 1, 7, 9), (1, 1, 1, 1), mode="replicate")
    expected = torch.nn.functional.conv2d(planes, kernel[None, None]).reshape(2, 3, 7, 9).permute(0, 2, 3, 1)
    assert torch.allclose(laplacian(image), expected, atol=1e-12)
    assert torch.autograd.gradcheck(laplacian, (image[:1, :4, :5].clone().requires_grad_(True),))


def test_pixel_loss_ignores_masked_pixels_and_weights_the_laplacian():
    frame = torch.zeros(1, 6, 6, 3)
    render = torch.zeros(1, 6, 6, 3)
    render[0, 2, 2] = 1.0
    mask = torch.ones(1, 6, 6, 1)
    count = 3 * 36  # a mean over covered pixels and channels, in 8-bit levels
    data_only = pixel_loss(frame, render, mask, 0.0)
    assert float(data_only) == pytest.approx(3.0 * 255 / count)
    assert float(pixel_loss(frame, render, mask, 0.5)) == pytest.approx((3.0 + 0.5 * 3 * (4 + 4 * 1)) * 255 / count)
    mask[0, 2, 2] = 0.0
    assert float(pixel_loss(frame, render, mask, 0.5)) == 0.0


def test_eq7_and_eq8_do_not_change_with_the_working_resolution():
    """Both terms are means in resolution-free units, so λ_flow keeps its meaning at any image size."""
    g = torch.Generator().manual_seed(3)
    small = torch.rand(1, 3, 16, 16, generator=g)
    frame_small = small.permute(0, 2, 3, 1)
    frame_big = torch.nn.functional.interpolate(small, scale_factor=2, mode="nearest").permute(0, 2, 3, 1)
    mask_small, mask_big = torch.ones(1, 16, 16, 1), torch.ones(1, 32, 32, 1)
    a = pixel_loss(frame_small, frame_small * 0.5, mask_small, 0.0)
    b = pixel_loss(frame_big, frame_big * 0.5, mask_big, 0.0)
    assert torch.allclose(a, b)
    init = torch.rand(1, 50, 2, generator=g) * 16
    flow = torch.rand(1, 50, 2, generator=g)
    moved = init + flow + 0.5  # half a pixel off at 16 px is one pixel off at 32 px
    visible = torch.ones(1, 50)
    at16 = flow_loss(moved, init, flow, visible, image_side=16)
    at32 = flow_loss(2 * moved, 2 * init, 2 * flow, visible, image_side=32)
    assert torch.allclose(at16, at32) and float(at16) == pytest.approx(2 * (0.5 * 256 / 16) ** 2)


def test_pixel_loss_gradient_matches_finite_differences():
    g = torch.Generator().manual_seed(0)
    frame = torch.rand(2, 7, 6, 3, generator=g, dtype=torch.float64)
    render = torch.rand(2, 7, 6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(2, 7, 6, 1, generator=g, dtype=torch.float64) > 0.3).double()
    assert torch.autograd.gradcheck(lambda r: pixel_loss(frame, r, mask, 0.25), (render,), eps=1e-6, atol=1e-5)


def test_flow_and_landmark_gradients_match_finite_differences():
    g = torch.Generator().manual_seed(1)
    projected = torch.rand(2, 10, 2, generator=g, dtype=torch.float64, requires_grad=True)
    init = torch.rand(2, 10, 2, generator=g, dtype=torch.float64)
    flow = torch.rand(2, 10, 2, generator=g, dtype=torch.float64)
    visible = (torch.rand(2, 10, generator=g) > 0.4).double()
    assert torch.autograd.gradcheck(lambda p: flow_loss(p, init, flow, visible), (projected,))
    detected = torch.rand(2, 10, 2, generator=g, dtype=torch.float64)
    weight = torch.rand(2, 10, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: landmark_loss(p, detected, weight), (projected,))
    # Eq. 8 is zero exactly when the vertices moved by the flow, and counts only visible vertices.
    assert torch.allclose(flow_loss(init + flow, init, flow, visible), torch.zeros(2, dtype=torch.float64))
    moved = (init + flow).clone()
    moved[:, 0, 0] += 1.0
    expected = visible[:, 0] / visible.sum(-1)  # one visible vertex 1 px off, averaged over the visible ones
    assert torch.allclose(flow_loss(moved, init, flow, visible, image_side=256), expected)


def test_dis_flow_recovers_a_known_shift_at_vertices():
    rng = np.random.default_rng(0)
    texture = torch.from_numpy(rng.random((1, 16, 16, 1)).repeat(3, -1).astype(np.float32))
    base = torch.nn.functional.interpolate(texture.permute(0, 3, 1, 2), size=(64, 64), mode="bicubic",
                                           align_corners=False).permute(0, 2, 3, 1).clamp(0, 1)
    shifted = torch.roll(base, shifts=(2, 3), dims=(1, 2))  # content moves 3 px right, 2 px down
    flow = dis_flow(base, shifted, "medium")
    centre = flow[0, 16:48, 16:48].reshape(-1, 2).median(0).values
    assert torch.allclose(centre, torch.tensor([3.0, 2.0]), atol=0.3)
    points = torch.tensor([[[32.0, 32.0], [20.5, 40.5]]])
    d = vertex_flow(base, shifted, points, "medium")
    assert torch.allclose(d, torch.tensor([3.0, 2.0]).expand_as(d), atol=0.5)


def test_sample_at_uses_pixel_centres():
    field = torch.arange(12.0).reshape(1, 3, 4, 1)
    assert float(sample_at(field, torch.tensor([[[2.5, 1.5]]]))) == 6.0  # centre of col 2, row 1
    assert float(sample_at(field, torch.tensor([[[2.0, 1.5]]]))) == 5.5  # halfway between cols 1 and 2


def test_key_frames_cover_the_rotation_range():
    yaw = np.linspace(-0.8, 0.8, 41)
    rotations = np.stack([np.full_like(yaw, np.pi), yaw, np.zeros_like(yaw)], -1)
    keys = select_key_frames(rotations, 5)
    assert len(keys) == 5 and keys == sorted(keys)
    assert 0 in keys and 40 in keys  # both extremes
    assert np.ptp(np.diff(yaw[keys])) < 0.25  # roughly uniform over the range
    assert select_key_frames(rotations, 0) == list(range(41))
    valid = np.ones(41, bool)
    valid[40] = False
    assert 40 not in select_key_frames(rotations, 5, valid)


def test_acceleration_penalty_leaves_constant_velocity_free_and_ignores_the_axis_angle_branch():
    frames = 6
    steps = torch.arange(frames, dtype=torch.float32)[:, None]
    translation = torch.tensor([1.0, -2.0, 5.0]) * steps  # mm, constant velocity
    r = torch.tensor([math.pi - 0.02, 0.0, 0.0]) + torch.tensor([0.004, 0.0, 0.0]) * steps  # crosses |r| = π
    rotation = axis_angle_to_matrix(r)
    other_branch = r * (1.0 - 2.0 * math.pi / r.norm(dim=-1, keepdim=True))  # same rotations, other branch
    rot_acc, trans_acc = acceleration_penalty(rotation, translation)
    assert float(trans_acc.abs().max()) < 1e-8
    assert float(rot_acc.max()) < 1e-8  # one axis at constant rate: second differences of ~1e-5
    assert torch.allclose(acceleration_penalty(axis_angle_to_matrix(other_branch), translation)[0], rot_acc, atol=1e-7)
    jitter = translation.clone()
    jitter[3, 2] += 2.0  # one frame 2 mm off in depth
    _, jittered = acceleration_penalty(rotation, jitter)
    assert jittered.tolist() == pytest.approx([0.0, 0.0, 4.0, 16.0, 4.0, 0.0])  # (1, -2, 1) x 2 mm, squared
    assert acceleration_penalty(rotation[:2], translation[:2])[1].tolist() == [0.0, 0.0]


def test_second_difference_is_the_acceleration_at_any_frame_spacing():
    times = torch.tensor([0.0, 1.0, 3.0, 7.0, 8.0, 20.0], dtype=torch.float64)
    x = torch.stack([1.5 * times**2 - 4.0 * times + 2.0, -0.25 * times**2], -1)  # accelerations 3 and -0.5
    acc = second_difference(x, times)
    assert torch.allclose(acc, torch.tensor([[3.0, -0.5]], dtype=torch.float64).expand(4, 2), atol=1e-12)
    steps = torch.arange(6, dtype=torch.float64)
    y = torch.randn(6, 3, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.allclose(second_difference(y, steps), second_difference(y), atol=1e-12)  # unit spacing
    assert torch.allclose(second_difference(y), y[:-2] - 2 * y[1:-1] + y[2:])
    # frames kept every 7th: the same 2 mm jump in depth is an acceleration 49x smaller per frame²
    rotation = torch.eye(3, dtype=torch.float64).expand(6, 3, 3)
    jump = torch.zeros(6, 3, dtype=torch.float64)
    jump[3, 2] = 2.0
    _, consecutive = acceleration_penalty(rotation, jump)
    _, strided = acceleration_penalty(rotation, jump, 7.0 * steps)
    assert torch.allclose(strided * 49.0**2, consecutive)
