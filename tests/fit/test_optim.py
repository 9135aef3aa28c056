"""run_adam: step sizes against Adam's closed form, the halving schedule, the early stop's exact rule,
cancel, non-finite losses and the per-iteration callback."""

from __future__ import annotations

import logging
import math
import threading

import pytest
import torch

from dlatrack_engine.fit.optim import Cancelled, run_adam


def _linear_run(iterations: int, lr: float, halving: int | None) -> list[float]:
    """Positions of x under loss = 2x: a constant gradient, so every Adam step is lr (m̂/√v̂ = 1)."""
    x = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    positions: list[float] = []
    run_adam([x], lambda: 2.0 * x.sum(), iterations, lr, halving=halving,
             on_iteration=lambda _it, _loss: positions.append(float(x.detach())))
    return positions


def test_each_step_is_lr_and_the_lr_halves_every_halving_iterations():
    steps = torch.diff(torch.tensor([0.0, *_linear_run(6, 0.1, halving=2)], dtype=torch.float64))
    expected = torch.tensor([-0.1, -0.1, -0.05, -0.05, -0.025, -0.025], dtype=torch.float64)
    assert torch.allclose(steps, expected, atol=1e-9)
    flat = torch.diff(torch.tensor([0.0, *_linear_run(4, 0.1, halving=None)], dtype=torch.float64))
    assert torch.allclose(flat, torch.full((4,), -0.1, dtype=torch.float64), atol=1e-9)


def _scripted(values: list[float], **kwargs) -> tuple[tuple[float, int], list[tuple[int, float]]]:
    """run_adam over a loss that returns `values` in turn (zero gradient); returns its result and callbacks."""
    x = torch.nn.Parameter(torch.zeros(1))
    script = iter(values)
    calls: list[tuple[int, float]] = []
    result = run_adam([x], lambda: x.sum() * 0.0 + next(script), len(values), 0.1,
                      on_iteration=lambda it, loss: calls.append((it, loss)), **kwargs)
    return result, calls


def test_early_stop_compares_with_the_loss_patience_iterations_ago():
    # patience 2, tolerance 1 %: at it 5 the loss fell 8 -> 7.98 over two iterations, 0.25 % < 1 %
    (loss, its), calls = _scripted([10.0, 9.0, 8.0, 7.99, 7.98, 7.97, 7.96], patience=2, tolerance=0.01)
    assert (loss, its) == (pytest.approx(7.98), 5)
    assert [it for it, _ in calls] == [1, 2, 3, 4, 5] and calls[-1][1] == pytest.approx(7.98)
    # a fall of exactly tolerance · |old| is enough to go on (strict <): 8 -> 6 -> 4.5 -> 3.375 are 25 % each
    (_, its), _ = _scripted([8.0, 6.0, 4.5, 3.375, 3.0, 2.0], patience=1, tolerance=0.25)
    assert its == 5  # 3.375 -> 3.0 is 11 %


def test_early_stop_needs_both_patience_and_tolerance_and_a_floor_at_zero():
    rising = [1.0, 2.0, 3.0, 4.0, 5.0]
    assert _scripted(rising, patience=0, tolerance=0.1)[0][1] == 5
    assert _scripted(rising, patience=2, tolerance=0.0)[0][1] == 5
    assert _scripted(rising)[0] == (5.0, 5)
    # from a loss of 0 the relative bar is 0.5 · 1e-12: a fall of 0.3 goes on, no fall stops
    assert _scripted([0.0, -0.3, -0.6, -0.9], patience=1, tolerance=0.5)[0][1] == 4
    assert _scripted([0.0, 0.0, -0.6, -0.9], patience=1, tolerance=0.5)[0][1] == 2


def test_cancel_non_finite_losses_and_parameter_groups():
    x = torch.nn.Parameter(torch.ones(2))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled, match=r"^cancelled$"):
        run_adam([x], lambda: x.sum(), 3, 0.1, cancel=cancel)
    assert torch.equal(x.detach(), torch.ones(2))  # cancelled before the first step
    with pytest.raises(FloatingPointError, match=r"loss became nan at iteration 1"):
        run_adam([x], lambda: x.sum() * float("nan"), 3, 0.1)
    with pytest.raises(FloatingPointError, match=r"loss became inf at iteration 2"):
        calls = iter([1.0, float("inf")])
        run_adam([x], lambda: x.sum() * next(calls), 3, 0.1)
    y = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    z = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    loss, its = run_adam([{"params": [y]}, {"params": [z], "lr": 0.5}], lambda: (y + z).sum(), 1, 0.1,
                         cancel=threading.Event())
    assert its == 1 and loss == 0.0
    assert float(y.detach()) == pytest.approx(-0.1, abs=1e-8) and float(z.detach()) == pytest.approx(-0.5, abs=1e-8)


def test_defaults_zero_iterations_and_the_early_stop_log(caplog):
    assert _scripted([3.0, 2.0, 1.0, 1.0], patience=1)[0][1] == 4  # tolerance 0 by default: no early stop
    assert _scripted([3.0, 3.0, 3.0, 3.0], tolerance=0.5)[0][1] == 4  # patience 0 by default
    x = torch.nn.Parameter(torch.zeros(1))
    loss, its = run_adam([x], lambda: x.sum(), 0, 0.1)
    assert math.isnan(loss) and its == 0
    with caplog.at_level(logging.DEBUG, logger="dlatrack_engine.fit.optim"):
        _scripted([10.0, 9.0, 8.0, 7.99, 7.98, 7.97], patience=2, tolerance=0.01)
    assert [r.getMessage() for r in caplog.records] == ["early stop at iteration 5 (loss 7.98)"]


def test_a_leaf_left_out_of_the_loss_is_not_moved_by_its_old_momentum():
    """Gradients are reset to None, so Adam skips a leaf the loss did not use this iteration (a frame outside
    the current mini-batch) instead of stepping it on momentum from earlier iterations."""
    y = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    z = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
    uses_y = iter([True, False, False])
    run_adam([y, z], lambda: (y if next(uses_y) else z).sum(), 3, 0.1)
    assert float(y.detach()) == pytest.approx(-0.1, abs=1e-8)  # one step, then left alone
    assert float(z.detach()) == pytest.approx(-0.2, abs=1e-8)
