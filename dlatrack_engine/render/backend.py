"""The render interface — nvdiffrast's four operations, one call shape for every backend — and the choice of
backend for a device.

Shapes (as in nvdiffrast): pos [B, V, 4] clip space (see `render.camera.clip_from_camera`), tri [F, 3] int32,
rast [B, H, W, 4] = (u, v, z/w, triangle_id + 1) with zeros where empty, tex [B, Th, Tw, C], uv [B, H, W, 2].
"""

from __future__ import annotations

import logging
import os
from typing import Protocol, runtime_checkable

import torch

log = logging.getLogger(__name__)

BACKEND_NAMES = ("torch", "nvdiffrast")
ENV_VAR = "DLATRACK_RENDER_BACKEND"
_BACKENDS: dict[tuple[str, str], RasterBackend] = {}


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


def nvdiffrast_available() -> bool:
    """True when `nvdiffrast.torch` imports and CUDA is usable (it cannot run without CUDA)."""
    if not torch.cuda.is_available():
        return False
    try:
        import nvdiffrast.torch  # noqa: F401
    except Exception as exc:  # ImportError, or a broken CUDA toolkit during import
        log.debug("nvdiffrast not usable: %s", exc)
        return False
    return True


def get_backend(device: torch.device | str, name: str | None = None) -> RasterBackend:
    """The render backend for `device`: `name`, else env DLATRACK_RENDER_BACKEND, else automatic
    (nvdiffrast if the device is CUDA and nvdiffrast imports, otherwise torch). Instances are shared."""
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    requested = name or os.environ.get(ENV_VAR) or "auto"
    if requested not in (*BACKEND_NAMES, "auto"):
        raise ValueError(f"render backend {requested!r} (from {'argument' if name else ENV_VAR}) is unknown; "
                         f"expected one of {', '.join(BACKEND_NAMES)} or 'auto'")
    if requested == "auto":
        requested = "nvdiffrast" if device.type == "cuda" and nvdiffrast_available() else "torch"
    key = (requested, str(device))
    if key not in _BACKENDS:
        if requested == "nvdiffrast":
            if device.type != "cuda":
                raise RuntimeError(f"render backend 'nvdiffrast' needs a CUDA device, but device is '{device}'")
            # Imported here: nvdiffrast needs CUDA, and the torch backend's modules are not needed on a GPU.
            from dlatrack_engine.render.nvdiffrast_backend import NvdiffrastBackend

            _BACKENDS[key] = NvdiffrastBackend(device)
        else:
            from dlatrack_engine.render.torch_backend import TorchBackend

            _BACKENDS[key] = TorchBackend(device)
        log.info("render backend: %s on %s", requested, device)
    return _BACKENDS[key]
