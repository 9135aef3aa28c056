"""FrameParams' row operations (detach, select, assign) and which ScaledParams leaves the optimiser moves."""

from __future__ import annotations

import torch

from dlatrack_engine.fit.params import FrameParams, ScaledParams


def _params() -> FrameParams:
    rows = torch.arange(4.0)[:, None]
    return FrameParams(rows + torch.zeros(4, 3), 10 + rows + torch.zeros(4, 3), 20 + rows + torch.zeros(4, 2))


def test_detach_is_an_independent_copy_of_every_field():
    leaf = torch.zeros(2, 3, requires_grad=True)
    live = FrameParams(leaf * 2, leaf + 1, leaf[:, :2] - 1)
    copy = live.detach()
    assert [x.requires_grad for x in (copy.r, copy.t, copy.z)] == [False, False, False]
    assert copy.r.tolist() == [[0.0] * 3] * 2 and copy.t.tolist() == [[1.0] * 3] * 2
    assert copy.z.tolist() == [[-1.0] * 2] * 2
    p = _params()
    d = p.detach()
    d.r += 1
    d.t += 1
    d.z += 1
    assert torch.equal(p.r, _params().r) and torch.equal(p.t, _params().t) and torch.equal(p.z, _params().z)


def test_select_and_assign_address_the_same_rows_of_all_three_fields():
    p = _params()
    picked = p.select([3, 1])
    assert len(picked) == 2
    assert picked.r[:, 0].tolist() == [3.0, 1.0] and picked.t[:, 0].tolist() == [13.0, 11.0]
    assert picked.z[:, 0].tolist() == [23.0, 21.0]
    assert p.select(torch.tensor([0, 2], dtype=torch.int32)).z[:, 1].tolist() == [20.0, 22.0]
    source = FrameParams(torch.full((2, 3), -1.0, requires_grad=True), torch.full((2, 3), -2.0),
                         torch.full((2, 2), -3.0))
    p.assign([2, 0], source)
    assert p.r[:, 0].tolist() == [-1.0, 1.0, -1.0, 3.0] and p.t[:, 0].tolist() == [-2.0, 11.0, -2.0, 13.0]
    assert p.z[:, 0].tolist() == [-3.0, 21.0, -3.0, 23.0] and not p.r.requires_grad


def test_the_expression_leaf_is_optimised_unless_turned_off():
    p = _params()
    assert ScaledParams(p, 0.1, 0.01).z.requires_grad
    frozen = ScaledParams(p, 0.1, 0.01, optimise_z=False)
    assert not frozen.z.requires_grad and frozen.r.requires_grad and frozen.t.requires_grad
    assert torch.equal(frozen.params().z, p.z)
