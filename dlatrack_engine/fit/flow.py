"""Dense optical flow for Eq. 8: OpenCV's DIS (Kroeger et al. 2016) from the render at the step-1
parameters to the frame, sampled at the projected mesh vertices.

DIS runs per frame on 8-bit grey images (OpenCV's API); everything around it is batched tensors.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from dlatrack_engine.colour import linear_to_srgb8

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def _grey8(image: np.ndarray) -> np.ndarray:
    srgb = linear_to_srgb8(image)
    return cv2.cvtColor(srgb, cv2.COLOR_RGB2GRAY)


def dis_flow(source: torch.Tensor, target: torch.Tensor, preset: str = "medium") -> torch.Tensor:
    """Flow d with source(x) ≈ target(x + d(x)).

    source, target: [B, H, W, 3] linear RGB -> [B, H, W, 2] pixels (u, v), on source's device.
    """
    if preset not in _PRESETS:
        raise ValueError(f"unknown DIS preset '{preset}': expected one of {sorted(_PRESETS)}")
    if source.shape != target.shape:
        raise ValueError(f"DIS flow: source {list(source.shape)} and target {list(target.shape)} differ")
    dis = cv2.DISOpticalFlow_create(_PRESETS[preset])
    src = source.detach().cpu().numpy()
    dst = target.detach().cpu().numpy()
    flows = [dis.calc(_grey8(s), _grey8(d), None) for s, d in zip(src, dst, strict=True)]
    return torch.from_numpy(np.stack(flows)).to(source.device)


def sample_at(field: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Bilinearly sample `field` [B, H, W, C] at pixel positions `points` [B, N, 2] (u, v; the image's
    top-left corner is (0, 0), pixel centres at +0.5, conventions.md) -> [B, N, C]. Outside: border value."""
    _b, h, w, _c = field.shape
    grid = torch.stack([2.0 * points[..., 0] / w - 1.0, 2.0 * points[..., 1] / h - 1.0], dim=-1)
    out = F.grid_sample(field.permute(0, 3, 1, 2), grid[:, :, None, :], mode="bilinear",
                        padding_mode="border", align_corners=False)
    return out[..., 0].permute(0, 2, 1)


def vertex_flow(render_init: torch.Tensor, frame: torch.Tensor, projected_init: torch.Tensor,
                preset: str = "medium") -> torch.Tensor:
    """d_i of Eq. 8: flow from the initial render to the frame at each projected vertex -> [B, V, 2]."""
    flow = dis_flow(render_init, frame, preset)
    return sample_at(flow, projected_init)
