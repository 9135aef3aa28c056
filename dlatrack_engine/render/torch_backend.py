"""The `torch` render backend: runs on any device torch supports (the CPU here, CUDA as a fallback)."""

from __future__ import annotations

import torch

from dlatrack_engine.render import torch_antialias, torch_ops, torch_raster


class TorchBackend:
    """nvdiffrast's four ops in plain PyTorch; see `torch_raster`, `torch_ops`, `torch_antialias`."""

    name = "torch"

    def __init__(self, device: torch.device | str = "cpu", chunk_pairs: int = 1 << 18) -> None:
        self.device = torch.device(device)
        # (triangle, pixel) candidates processed at once: bounds visibility memory to ~150 B per pair,
        # ~40 MB at the default, at no measurable speed cost on the CPU.
        self.chunk_pairs = chunk_pairs

    def rasterize(self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        return torch_raster.rasterize(pos, tri, resolution, self.chunk_pairs)

    def interpolate(self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        return torch_ops.interpolate(attr, rast, tri)

    def texture(self, tex: torch.Tensor, uv: torch.Tensor, filter_mode: str = "linear",
                boundary_mode: str = "clamp") -> torch.Tensor:
        return torch_ops.texture(tex, uv, filter_mode, boundary_mode)

    def antialias(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor,
                  tri: torch.Tensor) -> torch.Tensor:
        return torch_antialias.antialias(color, rast, pos, tri)

    def __repr__(self) -> str:
        return f"TorchBackend(device={self.device})"
