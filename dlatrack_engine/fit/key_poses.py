"""Step 3's starting poses once step 2 has refined the key-frame poses p_k (Algorithm 1).

Step 1's pose error comes from the landmark detector and changes slowly over a clip (it follows the head
pose and the lighting: a detector's bias on one side of the face, its scale under coloured light), so the
correction step 2 made at a key frame also holds, nearly, at the frames around it. Key frames start step 3
from their refined p_k; every other frame from its step-1 pose corrected by the rigid correction of the key
frames before and after it, interpolated linearly in time (the nearest one's beyond the first and last).
"""

from __future__ import annotations

import numpy as np
import torch

from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.geometry import axis_angle_to_matrix, matrix_to_axis_angle


def spread_key_corrections(init: FrameParams, keys: list[int], refined: FrameParams) -> FrameParams:
    """init: step-1 params of all N frames; keys: K sorted rows; refined: p_k of those rows after step 2.

    The correction of key k is (ΔR_k = R(p_k) R(p̃_k)ᵀ, Δt_k = t_k − t̃_k), applied as R = ΔR R(p̃), t = t̃ + Δt;
    ΔR is interpolated as an axis-angle vector (corrections are a few degrees, far from the branch cut).
    """
    n = len(init)
    if len(keys) != len(refined):
        raise ValueError(f"key poses: {len(keys)} key frames but {len(refined)} refined poses")
    if not keys:
        return init
    order = np.argsort(keys)
    keys_sorted = np.asarray(keys)[order]
    index = torch.as_tensor(keys_sorted, dtype=torch.long, device=init.r.device)
    refined = refined.select(torch.as_tensor(order, device=init.r.device))
    delta_r = matrix_to_axis_angle(refined.rotation() @ init.select(index).rotation().transpose(-1, -2))
    delta_t = refined.t - init.t[index]
    weights = torch.as_tensor(_interpolation_matrix(keys_sorted, n), dtype=init.r.dtype, device=init.r.device)
    rotation = axis_angle_to_matrix(weights @ delta_r) @ init.rotation()
    params = FrameParams(matrix_to_axis_angle(rotation), init.t + weights @ delta_t, init.z.clone())
    params.assign(index, refined)
    return params


def _interpolation_matrix(keys: np.ndarray, n: int) -> np.ndarray:
    """[n, K] weights of linear interpolation in time between sorted key rows, constant beyond the ends
    (np.interp of each key's indicator)."""
    rows = np.arange(n)
    return np.stack([np.interp(rows, keys, indicator) for indicator in np.eye(len(keys))], axis=1)
