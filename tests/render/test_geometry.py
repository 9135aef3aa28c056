"""Rotations, point transforms and normals (dlatrack_engine.geometry)."""

from __future__ import annotations

import math

import pytest
import torch

from dlatrack_engine.geometry import (
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    transform_points,
    vertex_normals,
)
from dlatrack_engine.render.primitives import uv_sphere


def test_rodrigues_matches_known_rotation() -> None:
    R = axis_angle_to_matrix(torch.tensor([0.0, 0.0, math.pi / 2], dtype=torch.float64))
    expected = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(R, expected)


@pytest.mark.parametrize("scale", [1e-9, 1e-4, 0.5, 2.0, math.pi - 1e-4])
def test_rotation_round_trip(scale: float) -> None:
    gen = torch.Generator().manual_seed(0)
    axis = torch.randn(64, 3, generator=gen, dtype=torch.float64)
    r = axis / axis.norm(dim=-1, keepdim=True) * scale
    R = axis_angle_to_matrix(r)
    torch.testing.assert_close(R @ R.transpose(-1, -2), torch.eye(3, dtype=torch.float64).expand(64, 3, 3))
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(64, dtype=torch.float64))
    torch.testing.assert_close(matrix_to_axis_angle(R), r, atol=1e-7, rtol=1e-6)


def test_rotation_by_pi_round_trips_up_to_sign() -> None:
    r = torch.tensor([[math.pi, 0.0, 0.0], [0.0, 0.0, math.pi]], dtype=torch.float64)
    back = matrix_to_axis_angle(axis_angle_to_matrix(r))
    torch.testing.assert_close(axis_angle_to_matrix(back), axis_angle_to_matrix(r))
    torch.testing.assert_close(back.norm(dim=-1), torch.full((2,), math.pi, dtype=torch.float64))


def test_rodrigues_gradient_at_zero_is_finite_and_correct() -> None:
    r = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    # dR/dr_k at 0 is the generator skew(e_k).
    jac = torch.autograd.functional.jacobian(axis_angle_to_matrix, r)
    assert torch.isfinite(jac).all()
    e_x = torch.tensor([[0.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    torch.testing.assert_close(jac[..., 0], e_x)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (r,))
    r_small = torch.full((3,), 1e-5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (r_small,))


def test_rodrigues_and_inverse_gradients_away_from_zero() -> None:
    r = torch.tensor([[0.3, -0.7, 1.1], [2.0, 0.1, -0.4]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(axis_angle_to_matrix, (r,))
    assert torch.autograd.gradcheck(lambda x: matrix_to_axis_angle(axis_angle_to_matrix(x)), (r,))


def test_transform_points_is_rotation_plus_translation() -> None:
    R = axis_angle_to_matrix(torch.tensor([[0.1, 0.2, 0.3]]))
    t = torch.tensor([[1.0, -2.0, 0.5]])
    x = torch.randn(1, 10, 3)
    expected = torch.einsum("bij,bnj->bni", R, x) + t[:, None]
    torch.testing.assert_close(transform_points(R, t, x), expected)


def test_vertex_normals_of_sphere_point_outwards() -> None:
    v, f, _, _ = uv_sphere(12, 24)
    n = vertex_normals(v[None], f)[0]
    torch.testing.assert_close(n.norm(dim=-1), torch.ones(v.shape[0]))
    cos = (n * v / v.norm(dim=-1, keepdim=True)).sum(-1)
    assert cos.min() > 0.98
