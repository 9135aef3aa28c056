"""The `nvdiffrast` render backend: a thin wrapper over `nvdiffrast.torch` on CUDA.

nvdiffrast ships on PyPI as `diffrp-nvdiffrast` (0.3.3) and JIT-compiles its CUDA kernels on first use, so
this module is imported only when a CUDA device is in use (`render.backend.get_backend`).
"""

from __future__ import annotations

import logging

import torch

log = logging.getLogger(__name__)


class NvdiffrastBackend:
    """nvdiffrast's rasterize / interpolate / texture / antialias with one `RasterizeCudaContext`."""

    name = "nvdiffrast"

    def __init__(self, device: torch.device | str = "cuda") -> None:
        self.device = torch.device(device)
        if self.device.type != "cuda":
            raise ValueError(f"nvdiffrast backend needs a CUDA device, got '{self.device}'")
        import nvdiffrast.torch as dr  # only importable/usable with CUDA

        self._dr = dr
        self._ctx = dr.RasterizeCudaContext(device=self.device)
        self._topology: list[tuple[torch.Tensor, object]] = []
        log.info("nvdiffrast backend on %s", self.device)

    @staticmethod
    def _tri(tri: torch.Tensor, device: torch.device) -> torch.Tensor:
        return tri.to(device=device, dtype=torch.int32).contiguous()

    def rasterize(self, pos: torch.Tensor, tri: torch.Tensor, resolution: tuple[int, int]) -> torch.Tensor:
        rast, _ = self._dr.rasterize(self._ctx, pos.float().contiguous(), self._tri(tri, pos.device),
                                     resolution=[int(resolution[0]), int(resolution[1])])
        return rast

    def interpolate(self, attr: torch.Tensor, rast: torch.Tensor, tri: torch.Tensor) -> torch.Tensor:
        if attr.dim() == 2:
            attr = attr[None]
        out, _ = self._dr.interpolate(attr.float().contiguous(), rast.contiguous(), self._tri(tri, rast.device))
        return out

    def texture(self, tex: torch.Tensor, uv: torch.Tensor, filter_mode: str = "linear",
                boundary_mode: str = "clamp") -> torch.Tensor:
        if tex.shape[0] == 1 and uv.shape[0] > 1:
            tex = tex.expand(uv.shape[0], -1, -1, -1)
        return self._dr.texture(tex.float().contiguous(), uv.float().contiguous(), filter_mode=filter_mode,
                                boundary_mode=boundary_mode)

    def antialias(self, color: torch.Tensor, rast: torch.Tensor, pos: torch.Tensor,
                  tri: torch.Tensor) -> torch.Tensor:
        tri32 = self._tri(tri, pos.device)
        return self._dr.antialias(color.float().contiguous(), rast.contiguous(), pos.float().contiguous(), tri32,
                                  topology_hash=self._topology_hash(tri32))

    def _topology_hash(self, tri: torch.Tensor) -> object:
        """nvdiffrast's edge hash for `tri`, built once per topology (a face mesh keeps its topology)."""
        for cached, topology in self._topology:
            if cached.shape == tri.shape and torch.equal(cached, tri):
                return topology
        topology = self._dr.antialias_construct_topology_hash(tri)
        self._topology = [(tri.clone(), topology), *self._topology[:7]]
        return topology

    def __repr__(self) -> str:
        return f"NvdiffrastBackend(device={self.device})"
