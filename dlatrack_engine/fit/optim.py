"""The optimisation loop every step shares: Adam, lr halved every N iterations, early stop, cancel.

"1000 iterations, Adam, lr 0.1 halved every 500" (docs/method.md, step 1) is `run_adam(..., iterations=1000,
lr=0.1, halving=500)`; the early stop ends the loop when the loss improved by less than `tolerance`
(relative) over the last `patience` iterations.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

import torch

log = logging.getLogger(__name__)


class Cancelled(RuntimeError):
    """The job's cancel event was set."""


def run_adam(parameters: Iterable[torch.nn.Parameter] | list[dict], loss_fn: Callable[[], torch.Tensor],
             iterations: int, lr: float, halving: int | None = None, tolerance: float = 0.0,
             patience: int = 0, cancel: threading.Event | None = None,
             on_iteration: Callable[[int, float], None] | None = None) -> tuple[float, int]:
    """Minimise `loss_fn()` (a scalar) over `parameters`; returns (last loss, iterations run)."""
    groups = list(parameters)
    optimiser = torch.optim.Adam(groups, lr=lr)
    scheduler = torch.optim.lr_scheduler.StepLR(optimiser, step_size=halving, gamma=0.5) if halving else None
    history: list[float] = []
    loss_value = float("nan")
    it = 0
    for it in range(1, iterations + 1):
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled")
        optimiser.zero_grad(set_to_none=True)
        loss = loss_fn()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at iteration {it}")
        loss.backward()
        optimiser.step()
        if scheduler is not None:
            scheduler.step()
        loss_value = float(loss.detach())
        history.append(loss_value)
        if on_iteration is not None:
            on_iteration(it, loss_value)
        if patience and tolerance and it > patience:
            old = history[-patience - 1]
            if old - loss_value < tolerance * max(abs(old), 1e-12):
                log.debug("early stop at iteration %d (loss %.6g)", it, loss_value)
                break
    return loss_value, it
