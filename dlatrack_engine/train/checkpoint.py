"""Periodic training checkpoints and resume.

One file per stage (`<dir>/<stage>.pt`), rewritten atomically (tmp + rename), holding everything needed to
continue bit-for-bit where training stopped: model and optimiser states, scheduler, per-frame codes, the
epoch reached, the running loss history and the RNG state. A checkpoint from a different configuration is
refused (its stored config must match), so a resume never silently mixes two runs.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from dlatrack_engine.wire.atomic import atomic_write_with

log = logging.getLogger(__name__)


def checkpoint_path(directory: str | Path, stage: str) -> Path:
    return Path(directory) / f"{stage}.pt"


def save_checkpoint(directory: str | Path, stage: str, state: dict[str, Any]) -> Path:
    """Write `state` (tensors, state dicts, numbers, strings) for `stage`, atomically."""
    path = checkpoint_path(directory, stage)
    state = dict(state)
    state["rng_state"] = torch.get_rng_state()
    atomic_write_with(path, lambda handle: torch.save(state, handle))
    log.debug("checkpoint %s at epoch %s", path, state.get("epoch"))
    return path


def load_checkpoint(directory: str | Path, stage: str, expected_config: dict[str, Any]) -> dict[str, Any] | None:
    """The saved state of `stage`, or None when there is none. Raises if it was made with another config."""
    path = checkpoint_path(directory, stage)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for damaged files
        raise ValueError(f"{path}: unreadable checkpoint ({error}); delete it to start over") from error
    stored = state.get("config")
    if stored != expected_config:
        differing = sorted(
            k for k in set(stored or {}) | set(expected_config) if (stored or {}).get(k) != expected_config.get(k)
        )
        raise ValueError(
            f"{path}: checkpoint was made with a different configuration (fields {differing} differ); "
            "delete it or pass the same options to resume"
        )
    torch.set_rng_state(state["rng_state"])
    log.info("resuming %s from %s (epoch %d done)", stage, path, state["epoch"])
    return state
