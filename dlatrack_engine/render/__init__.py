"""dlatrack_engine.render: a differentiable rasteriser with nvdiffrast's four operations.

`get_backend(device)` picks `nvdiffrast` on CUDA when `nvdiffrast.torch` imports, else the plain-PyTorch
`torch` backend; `MeshRenderer` (mesh_renderer.py) is what models and fitting use; `camera` holds every
coordinate convention (docs/conventions.md).
"""

from __future__ import annotations

import logging
import os

import torch

from dlatrack_engine.render.backend import RasterBackend
from dlatrack_engine.render.camera import Camera, clip_from_camera, look_at, project

log = logging.getLogger(__name__)

BACKEND_NAMES = ("torch", "nvdiffrast")
ENV_VAR = "DLATRACK_RENDER_BACKEND"
_BACKENDS: dict[tuple[str, str], RasterBackend] = {}


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
            from dlatrack_engine.render.nvdiffrast_backend import NvdiffrastBackend

            _BACKENDS[key] = NvdiffrastBackend(device)
        else:
            from dlatrack_engine.render.torch_backend import TorchBackend

            _BACKENDS[key] = TorchBackend(device)
        log.info("render backend: %s on %s", requested, device)
    return _BACKENDS[key]


def __getattr__(name: str) -> object:
    # MeshRenderer imports get_backend from here, so it is exposed lazily to avoid an import cycle.
    if name in ("MeshRenderer", "RenderOutput"):
        from dlatrack_engine.render import mesh_renderer

        return getattr(mesh_renderer, name)
    raise AttributeError(f"module 'dlatrack_engine.render' has no attribute {name!r}")


__all__ = [
    "BACKEND_NAMES",
    "Camera",
    "MeshRenderer",
    "RasterBackend",
    "RenderOutput",
    "clip_from_camera",
    "get_backend",
    "look_at",
    "nvdiffrast_available",
    "project",
]
