"""Choosing the torch device once, the same way everywhere (CUDA when present, CPU otherwise)."""

from __future__ import annotations

import os

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """Return the device to run on.

    `requested` (or env `DLATRACK_DEVICE`) may be "cpu", "cuda" or "cuda:N"; asking for CUDA on a machine
    without it is an error rather than a silent fallback, so a user never benchmarks the wrong thing.
    """
    name = requested or os.environ.get("DLATRACK_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' was requested but this torch build sees no CUDA device")
    return device
