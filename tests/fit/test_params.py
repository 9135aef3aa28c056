"""ScaledParams: the optimiser's leaves map back to physical units, and the log-depth leaf moves a head along
its own viewing ray (the direction step 1's landmarks get most wrong)."""

from __future__ import annotations

import torch

from dlatrack_engine.fit.params import FrameParams, ScaledParams


def _params() -> FrameParams:
    g = torch.Generator().manual_seed(3)
    r = torch.randn(4, 3, generator=g)
    t = torch.tensor([[0.02, -0.01, 0.95], [0.0, 0.03, 1.05], [-0.04, 0.0, 0.8], [0.01, 0.01, 1.2]])
    return FrameParams(r, t, torch.randn(4, 5, generator=g))


def test_leaves_start_at_the_given_params_with_and_without_a_depth_leaf():
    p = _params()
    for depth_unit in (0.0, 0.15):
        q = ScaledParams(p, 0.1, 0.01, depth_unit=depth_unit).params()
        assert torch.allclose(q.r, p.r, atol=1e-6) and torch.allclose(q.t, p.t, atol=1e-7) and torch.equal(q.z, p.z)
    assert [name for name, _ in ScaledParams(p, 0.1, 0.01).named_parameters()] == ["r", "t", "z"]
    assert len(list(ScaledParams(p, 0.1, 0.01, depth_unit=0.15).parameters())) == 4


def test_the_depth_leaf_moves_each_head_along_its_own_ray_by_a_factor():
    p = _params()
    leaves = ScaledParams(p, 0.1, 0.01, depth_unit=0.15)
    with torch.no_grad():
        leaves.depth.copy_(torch.tensor([[1.0], [-2.0], [0.0], [0.5]]))
    t = leaves.params().t
    factor = torch.exp(0.15 * torch.tensor([1.0, -2.0, 0.0, 0.5]))
    assert torch.allclose(t.norm(dim=-1), p.t.norm(dim=-1) * factor, rtol=1e-6)
    assert torch.allclose(t[:, :2] / t[:, 2:], p.t[:, :2] / p.t[:, 2:], atol=1e-7)  # same image position


def test_the_depth_leaf_gradient_matches_finite_differences():
    """∂L/∂d = depth_unit · (∂L/∂t · t) for any L of the translation."""
    p = _params()
    target = torch.tensor([0.0, 0.0, 1.0])

    def loss(leaves: ScaledParams) -> torch.Tensor:
        return (leaves.params().t - target).pow(2).sum() + leaves.params().t[:, 2].prod()

    leaves = ScaledParams(p, 0.1, 0.01, depth_unit=0.15)
    leaves.depth.data = leaves.depth.data.double()
    leaves.t.data = leaves.t.data.double()
    loss(leaves).backward()
    eps = 1e-6
    for row in range(len(p)):
        with torch.no_grad():
            leaves.depth[row] += eps
            up = float(loss(leaves))
            leaves.depth[row] -= 2 * eps
            down = float(loss(leaves))
            leaves.depth[row] += eps
        assert abs(float(leaves.depth.grad[row]) - (up - down) / (2 * eps)) < 1e-6
