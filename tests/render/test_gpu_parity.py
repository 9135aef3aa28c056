"""GPU-only: the torch backend and nvdiffrast give the same images on the same inputs (skipped on CPU)."""

from __future__ import annotations

import pytest
import torch

from dlatrack_engine.render import Camera, MeshRenderer, look_at, nvdiffrast_available
from dlatrack_engine.render.primitives import uv_sphere
from dlatrack_engine.render.torch_backend import TorchBackend

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not nvdiffrast_available(), reason="needs CUDA and nvdiffrast (diffrp-nvdiffrast)"),
]


def _scene(device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, Camera]:
    v, f, uv, uf = uv_sphere(24, 48)
    K = torch.tensor([[150.0, 0.0, 64.0], [0.0, 150.0, 60.0], [0.0, 0.0, 1.0]])
    R, t = look_at(torch.tensor([0.4, 0.3, 3.0]), torch.zeros(3), torch.tensor([0.0, 1.0, 0.0]))
    return v[None].to(device), f, uv, uf, Camera(K, R, t, 128, 120).to(device)


def test_torch_backend_matches_nvdiffrast_on_covered_pixels() -> None:
    from dlatrack_engine.render.nvdiffrast_backend import NvdiffrastBackend

    device = torch.device("cuda")
    v, f, uv, uf, cam = _scene(device)
    texture = torch.rand(1, 3, 64, 64, device=device, generator=torch.Generator(device).manual_seed(0))
    ours = MeshRenderer(f, uf, uv, device, backend=TorchBackend(device))
    theirs = MeshRenderer(f, uf, uv, device, backend=NvdiffrastBackend(device))
    a = ours.render(v, cam, texture)
    b = theirs.render(v, cam, texture)
    ids_a, ids_b = a.rast[..., 3], b.rast[..., 3]
    same = (ids_a == ids_b) & (ids_a > 0)
    # Triangle ids may differ only on a few pixel centres lying on edges (tie-breaking).
    assert float(((ids_a > 0) != (ids_b > 0)).float().sum()) <= 0.002 * ids_a.numel()
    assert float(same.float().sum()) >= 0.98 * float((ids_b > 0).float().sum())
    torch.testing.assert_close(a.rast[same][:, :3], b.rast[same][:, :3], atol=1e-4, rtol=0)
    diff_image = (a.image - b.image).abs().amax(-1)[same]
    assert float(diff_image.max()) < 1e-3, f"max abs image difference {float(diff_image.max()):.2e}"
    diff_depth = (a.depth - b.depth).abs()[..., 0][same]
    assert float(diff_depth.max()) < 1e-4
    # Antialiased coverage agrees on average (both blend the same silhouette edges).
    assert abs(float(a.mask.sum() - b.mask.sum())) < 0.02 * float(b.mask.sum())


def test_gradients_match_nvdiffrast() -> None:
    from dlatrack_engine.render.nvdiffrast_backend import NvdiffrastBackend

    device = torch.device("cuda")
    v, f, uv, uf, cam = _scene(device)
    texture = torch.rand(1, 3, 64, 64, device=device, generator=torch.Generator(device).manual_seed(1))
    grads = []
    for backend in (TorchBackend(device), NvdiffrastBackend(device)):
        renderer = MeshRenderer(f, uf, uv, device, backend=backend, antialias=False)
        verts = v.clone().requires_grad_(True)
        tex = texture.clone().requires_grad_(True)
        out = renderer.render(verts, cam, tex)
        (out.image * out.mask).sum().backward()
        grads.append((verts.grad, tex.grad))
    # Pixels whose centre lies exactly on an edge may pick different triangles (tie rules differ), so
    # compare whole gradients rather than entry by entry.
    for ours, theirs in zip(grads[0], grads[1], strict=True):
        relative = (ours - theirs).norm() / theirs.norm()
        assert float(relative) < 0.02, f"gradients differ by {float(relative):.3%}"
