"""Exact piecewise sRGB transfer functions (IEC 61966-2-1) for torch tensors and numpy arrays.

The engine works in linear RGB; video frames and PNGs for people are 8-bit sRGB (docs/conventions.md).
Negative inputs stay on the linear segment, so outputs stay finite and gradients never meet pow(0, <1).
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

ArrayLike = TypeVar("ArrayLike", torch.Tensor, np.ndarray)

_SRGB_THRESHOLD = 0.04045
_LINEAR_THRESHOLD = 0.0031308


def srgb_to_linear(x: ArrayLike) -> ArrayLike:
    """sRGB-encoded values in [0, 1] -> linear light."""
    if isinstance(x, torch.Tensor):
        curve = ((x.clamp_min(_SRGB_THRESHOLD) + 0.055) / 1.055) ** 2.4
        return torch.where(x <= _SRGB_THRESHOLD, x / 12.92, curve)
    x = np.asarray(x, dtype=np.float64) if not np.issubdtype(np.asarray(x).dtype, np.floating) else x
    curve = ((np.maximum(x, _SRGB_THRESHOLD) + 0.055) / 1.055) ** 2.4
    return np.where(x <= _SRGB_THRESHOLD, x / 12.92, curve).astype(x.dtype, copy=False)


def linear_to_srgb(x: ArrayLike) -> ArrayLike:
    """Linear light -> sRGB-encoded values (not clipped; clip before quantising to 8 bits)."""
    if isinstance(x, torch.Tensor):
        curve = 1.055 * x.clamp_min(_LINEAR_THRESHOLD) ** (1.0 / 2.4) - 0.055
        return torch.where(x <= _LINEAR_THRESHOLD, x * 12.92, curve)
    x = np.asarray(x, dtype=np.float64) if not np.issubdtype(np.asarray(x).dtype, np.floating) else x
    curve = 1.055 * np.maximum(x, _LINEAR_THRESHOLD) ** (1.0 / 2.4) - 0.055
    return np.where(x <= _LINEAR_THRESHOLD, x * 12.92, curve).astype(x.dtype, copy=False)


def linear_to_srgb8(x: np.ndarray | torch.Tensor) -> np.ndarray:
    """Linear RGB (any float array/tensor) -> uint8 sRGB, clipped and rounded, for PNGs and video."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    encoded = linear_to_srgb(np.asarray(x, dtype=np.float32))
    return np.clip(np.round(encoded * 255.0), 0, 255).astype(np.uint8)


def srgb8_to_linear(x: np.ndarray) -> np.ndarray:
    """uint8 sRGB -> float32 linear RGB in [0, 1]."""
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"srgb8_to_linear: expected a uint8 array, got dtype {x.dtype}")
    return srgb_to_linear(x.astype(np.float32) / 255.0)
