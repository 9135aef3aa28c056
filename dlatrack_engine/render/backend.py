"""The render interface: nvdiffrast's four operations, one call shape for every backend.

Shapes (as in nvdiffrast): pos [B, V, 4] clip space (see `render.camera.clip_from_camera`), tri [F, 3] int32,
rast [B, H, W, 4] = (u, v, z/w, triangle_id + 1) with zeros where empty, tex [B, Th, Tw, C], uv [B, H, W, 2].
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class RasterBackend(Protocol):
    """A differentiable rasteriser with nvdiffrast's semantics; `name` is "torch" or "nvdiffrast"."""

    name: str
    device: torch.device

    def rasterize(self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        """pos [B, V, 4], tri [F, 3] int32, (H, W) -> rast [B, H, W, 4]."""
        ...

    def interpolate(self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        """attr [B|1, V, C], rast [B, H, W, 4], tri [F, 3] -> [B, H, W, C]."""
        ...

    def texture(self, tex: torch.Tensor, uv: torch.Tensor, filter_mode: str = "linear",
                boundary_mode: str = "clamp") -> torch.Tensor:
        """tex [B, Th, Tw, C], uv [B, H, W, 2] in [0, 1] -> [B, H, W, C]."""
        ...

    def antialias(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor,
                  tri: torch.Tensor) -> torch.Tensor:
        """color [B, H, W, C] -> silhouette-antialiased color [B, H, W, C]."""
        ...
