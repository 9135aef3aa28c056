"""The epoch loop shared by the DAM and lighting trainers: shuffled (frame, camera) pairs in mini-batches,
per-sample mean of every loss term, periodic checkpoints and the wall-clock limit, and the provenance
summary. Each trainer supplies its loss function and the state to checkpoint."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from dlatrack_engine.train.checkpoint import save_checkpoint

log = logging.getLogger(__name__)

LossFn = Callable[[torch.Tensor, torch.Tensor], dict[str, torch.Tensor]]


def run_epoch(
    pairs: torch.Tensor,
    samples_per_epoch: int | None,
    batch_size: int,
    losses: LossFn,
    optimiser: torch.optim.Optimizer,
    max_grad_norm: float | None = None,
) -> dict[str, float]:
    """One epoch over a random order of `pairs` [P,2] (all, or the first `samples_per_epoch`):
    `losses(frames, cams)["total"]` is minimised batch by batch. Returns the per-sample mean of each term.
    `max_grad_norm` clips each step's gradient (global L2 norm over the optimised parameters)."""
    order = pairs[torch.randperm(len(pairs))][: samples_per_epoch or len(pairs)]
    params = [p for group in optimiser.param_groups for p in group["params"]]
    sums: dict[str, float] = {}
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        terms = losses(batch[:, 0], batch[:, 1])
        optimiser.zero_grad(set_to_none=True)
        terms["total"].backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimiser.step()
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(batch)
    return {key: value / len(order) for key, value in sums.items()}


def end_epoch(
    done: int,
    cfg: Any,
    start_time: float,
    checkpoint_dir: Path | None,
    stage: str,
    state: Callable[[], dict[str, Any]],
    desc: str,
) -> bool:
    """Checkpoint after epoch `done` when due (every `cfg.checkpoint_every`, the last epoch, or out of time);
    returns True when `cfg.time_limit_minutes` has run out and training should stop."""
    out_of_time = cfg.time_limit_minutes is not None and time.time() - start_time > 60 * cfg.time_limit_minutes
    if checkpoint_dir is not None and (done % cfg.checkpoint_every == 0 or done == cfg.epochs or out_of_time):
        save_checkpoint(checkpoint_dir, stage, state())
    if out_of_time:
        log.warning("%s: time limit of %s min reached after epoch %d", desc, cfg.time_limit_minutes, done)
    return out_of_time


def training_summary(
    history: list[dict], cfg: Any, start_time: float, frames: list[int], camera_names: list[str]
) -> dict[str, Any]:
    """The provenance record of a training stage."""
    return {
        "epochs": len(history),
        "epochs_planned": cfg.epochs,
        "final_losses": history[-1] if history else {},
        "first_losses": history[0] if history else {},
        "seconds": round(time.time() - start_time, 1),
        "train_frames": len(frames),
        "train_cameras": camera_names,
        "config": cfg.to_dict(),
    }
