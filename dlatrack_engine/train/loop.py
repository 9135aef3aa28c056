"""The training skeleton shared by the DAM and lighting trainers (and G's texture-space warm-up).

`train_epochs` is the one loop: resume from a checkpoint of the same configuration, then epochs of shuffled
samples in mini-batches (`run_epoch`), the per-sample mean of every loss term into the history, periodic
checkpoints and the wall-clock limit (`end_epoch`). A trainer supplies a `Stage` — its optimiser, scheduler,
the model state to checkpoint and the progress-bar fields — and its loss function; `training_summary` is the
provenance record of the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from dlatrack_engine.train.checkpoint import load_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

# losses(batch) for a batch of sample rows [b, k] (e.g. (frame, camera) pairs) -> named terms; "total" is minimised.
LossFn = Callable[[torch.Tensor], dict[str, torch.Tensor]]


@dataclass
class Stage:
    """What the shared loop needs to know about one trainer."""

    name: str  # checkpoint file stem ("dam", "lighting")
    desc: str  # progress-bar label
    config: dict[str, Any]  # the full configuration; a checkpoint made with another one is refused
    optimiser: torch.optim.Optimizer
    model_state: Callable[[], dict[str, Any]]  # the trainer's tensors to checkpoint ({"model": ..., ...})
    restore: Callable[[dict[str, Any]], None]  # loads them back from a checkpoint
    postfix: Callable[[dict[str, float]], dict[str, str]]  # progress-bar fields from an epoch's means
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None


def run_epoch(
    samples: torch.Tensor,
    samples_per_epoch: int | None,
    batch_size: int,
    losses: LossFn,
    optimiser: torch.optim.Optimizer,
    max_grad_norm: float | None = None,
) -> dict[str, float]:
    """One epoch over a random order of the rows of `samples` [P, k] (all, or the first `samples_per_epoch`):
    `losses(batch)["total"]` is minimised batch by batch. Returns the per-sample mean of each term.
    `max_grad_norm` clips each step's gradient (global L2 norm over the optimised parameters)."""
    order = samples[torch.randperm(len(samples))][: samples_per_epoch or len(samples)]
    params = [p for group in optimiser.param_groups for p in group["params"]]
    sums: dict[str, float] = {}
    for start in range(0, len(order), batch_size):
        batch = order[start : start + batch_size]
        terms = losses(batch)
        optimiser.zero_grad(set_to_none=True)
        terms["total"].backward()
        if max_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(params, max_grad_norm)
        optimiser.step()
        for key, value in terms.items():
            sums[key] = sums.get(key, 0.0) + float(value.detach()) * len(batch)
    return {key: value / len(order) for key, value in sums.items()}


def train_epochs(
    stage: Stage,
    cfg: Any,
    samples: torch.Tensor,
    losses: LossFn,
    start_time: float,
    checkpoint_dir: Path | None = None,
    progress: bool = True,
    max_grad_norm: float | None = None,
    before_first_epoch: Callable[[], None] | None = None,
) -> list[dict[str, float]]:
    """Train `cfg.epochs` epochs (resuming from `checkpoint_dir` when it holds this stage's checkpoint);
    returns the history of per-epoch loss means. `before_first_epoch` runs only on a fresh start (not on a
    resume). `cfg` needs epochs, batch_size, samples_per_epoch, checkpoint_every and time_limit_minutes."""
    first_epoch, history = 0, []
    if checkpoint_dir is not None:
        state = load_checkpoint(checkpoint_dir, stage.name, stage.config)
        if state is not None:
            stage.restore(state)
            stage.optimiser.load_state_dict(state["optimiser"])
            if stage.scheduler is not None:
                stage.scheduler.load_state_dict(state["scheduler"])
            first_epoch, history = int(state["epoch"]), list(state["history"])
    if before_first_epoch is not None and first_epoch == 0:
        before_first_epoch()
    bar = tqdm(range(first_epoch, cfg.epochs), desc=stage.desc, disable=not progress, initial=first_epoch,
               total=cfg.epochs)  # fmt: skip
    for epoch in bar:
        means = run_epoch(samples, cfg.samples_per_epoch, cfg.batch_size, losses, stage.optimiser, max_grad_norm)
        if stage.scheduler is not None:
            stage.scheduler.step()
        history.append(means)
        bar.set_postfix(**stage.postfix(means))
        state = partial(_state, stage, epoch + 1, history)
        if end_epoch(epoch + 1, cfg, start_time, checkpoint_dir, stage.name, state, stage.desc):
            break
    return history


def _state(stage: Stage, done: int, history: list[dict[str, float]]) -> dict[str, Any]:
    """The checkpoint after `done` epochs: everything `train_epochs` needs to continue bit for bit."""
    state = {"config": stage.config, "epoch": done, "history": history, **stage.model_state(),
             "optimiser": stage.optimiser.state_dict()}  # fmt: skip
    if stage.scheduler is not None:
        state["scheduler"] = stage.scheduler.state_dict()
    return state


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
