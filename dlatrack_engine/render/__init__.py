"""dlatrack_engine.render: a differentiable rasteriser with nvdiffrast's four operations.

`get_backend(device)` (backend.py) picks `nvdiffrast` on CUDA when `nvdiffrast.torch` imports, else the
plain-PyTorch `torch` backend; `MeshRenderer` (mesh_renderer.py) is what models and fitting use; `camera`
holds every coordinate convention (docs/conventions.md).
"""

from __future__ import annotations

from dlatrack_engine.render.backend import BACKEND_NAMES, RasterBackend, get_backend, nvdiffrast_available
from dlatrack_engine.render.camera import Camera, clip_from_camera, look_at, project
from dlatrack_engine.render.mesh_renderer import MeshRenderer, RenderOutput

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
