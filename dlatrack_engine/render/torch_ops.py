"""nvdiffrast's `interpolate` and `texture` in plain PyTorch (differentiable w.r.t. every float input)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def covered_pixels(rast: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flat indices of covered pixels in a [B, H, W, 4] rast, with their batch index and triangle index."""
    H, W = rast.shape[1], rast.shape[2]
    ids = rast[..., 3].detach().reshape(-1)
    idx = torch.nonzero(ids > 0).squeeze(1)
    face = ids.index_select(0, idx).long() - 1
    batch = torch.div(idx, H * W, rounding_mode="floor")
    return idx, batch, face


def interpolate(attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
    """Barycentric interpolation of per-vertex attributes: attr [B, V, C] (or [1, V, C] / [V, C], shared
    by the batch), rast [B, H, W, 4], tri [F, 3] -> [B, H, W, C], zeros where no triangle covers a pixel.
    `tri` may differ from the rasterised triangles (e.g. UV indices) as long as row f matches face f."""
    if attr.dim() == 2:
        attr = attr[None]
    B, H, W, _ = rast.shape
    if attr.shape[0] not in (1, B):
        raise ValueError(f"interpolate: attr batch {attr.shape[0]} must be 1 or match rast batch {B}")
    idx, batch, face = covered_pixels(rast)
    uv = rast.reshape(-1, 4).index_select(0, idx)
    corners = tri.long().to(attr.device).index_select(0, face)  # [N, 3]
    if attr.shape[0] == B and B > 1:
        corners = corners + (batch * attr.shape[1])[:, None]
    C = attr.shape[-1]
    a = attr.reshape(-1, C).index_select(0, corners.reshape(-1)).reshape(-1, 3, C)
    u, v = uv[:, 0:1], uv[:, 1:2]
    values = u * a[:, 0] + v * a[:, 1] + (1.0 - u - v) * a[:, 2]
    out = values.new_zeros(B * H * W, C).index_copy(0, idx, values)
    return out.reshape(B, H, W, C)


_PADDING = {"clamp": "border", "zero": "zeros"}
_FILTERS = {"linear": "bilinear", "nearest": "nearest", "auto": "bilinear"}


def texture(tex: torch.Tensor, uv: torch.Tensor, filter_mode: str = "linear",
            boundary_mode: str = "clamp") -> torch.Tensor:
    """Sample tex [B, Th, Tw, C] (nvdiffrast layout, row 0 = v near 0) at uv [B, H, W, 2] in [0, 1]
    -> [B, H, W, C]. Texel centres sit at (i + 0.5) / Tw as in nvdiffrast; `tex` batch 1 is broadcast.
    Supported: filter_mode "linear"/"nearest"/"auto" (no mip-maps), boundary_mode "clamp"/"zero"/"wrap"."""
    if filter_mode not in _FILTERS:
        raise ValueError(f"texture: filter_mode {filter_mode!r} is not supported by the torch backend; "
                         f"expected one of {sorted(_FILTERS)}")
    if boundary_mode not in (*_PADDING, "wrap"):
        raise ValueError(f"texture: boundary_mode {boundary_mode!r} is not supported; "
                         "expected 'clamp', 'zero' or 'wrap'")
    if tex.dim() != 4 or uv.dim() != 4 or uv.shape[-1] != 2:
        raise ValueError(f"texture: expected tex [B, Th, Tw, C] and uv [B, H, W, 2], got "
                         f"{tuple(tex.shape)} and {tuple(uv.shape)}")
    B = uv.shape[0]
    if tex.shape[0] == 1 and B > 1:
        tex = tex.expand(B, -1, -1, -1)
    elif tex.shape[0] != B:
        raise ValueError(f"texture: tex batch {tex.shape[0]} must be 1 or match uv batch {B}")
    image = tex.permute(0, 3, 1, 2)
    if boundary_mode == "wrap":
        # Pad one texel from the opposite side so bilinear taps across the seam wrap around.
        Th, Tw = image.shape[-2:]
        image = torch.cat([image[..., -1:, :], image, image[..., :1, :]], -2)
        image = torch.cat([image[..., -1:], image, image[..., :1]], -1)
        uv = torch.remainder(uv, 1.0)
        uv = torch.stack([(uv[..., 0] * Tw + 1.0) / (Tw + 2), (uv[..., 1] * Th + 1.0) / (Th + 2)], -1)
        padding = "border"
    else:
        padding = _PADDING[boundary_mode]
    grid = uv * 2.0 - 1.0
    out = F.grid_sample(image, grid.to(image.dtype), mode=_FILTERS[filter_mode], padding_mode=padding,
                        align_corners=False)
    return out.permute(0, 2, 3, 1)
