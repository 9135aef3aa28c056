"""MeshRenderer against analytic scenes: sphere coverage/depth, visibility, gradients, UV unwrapping."""

from __future__ import annotations

import math

import pytest
import torch
from grid_mesh import grid

from dlatrack_engine.render import Camera, MeshRenderer, get_backend, look_at
from dlatrack_engine.render.primitives import uv_sphere
from dlatrack_engine.render.torch_backend import TorchBackend

D = torch.float64


def _sphere_scene(size: int = 64, focal: float = 60.0, distance: float = 3.0, rings: int = 24
                  ) -> tuple[MeshRenderer, torch.Tensor, Camera]:
    v, f, uv, uf = uv_sphere(rings, 2 * rings)
    renderer = MeshRenderer(f, uf, uv, "cpu", backend="torch")
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]], dtype=D)
    R, t = look_at(torch.tensor([0.0, 0.0, distance], dtype=D), torch.zeros(3, dtype=D),
                   torch.tensor([0.0, 1.0, 0.0], dtype=D))
    return renderer, v[None].to(D), Camera(K, R, t, size, size)


def _pixel_rays(cam: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    H, W = cam.height, cam.width
    jj, ii = torch.meshgrid(torch.arange(H, dtype=D) + 0.5, torch.arange(W, dtype=D) + 0.5, indexing="ij")
    K = cam.K[0]
    return (ii - K[0, 2]) / K[0, 0], (jj - K[1, 2]) / K[1, 1]


def test_sphere_coverage_and_depth_match_analytic() -> None:
    renderer, v, cam = _sphere_scene()
    out = renderer.render(v, cam, torch.ones(1, 3, 8, 8, dtype=D))
    # Unit sphere at distance d: silhouette radius f / sqrt(d² - 1) pixels, depth from ray intersection.
    d, f = 3.0, 60.0
    x, y = _pixel_rays(cam)
    r2 = x**2 + y**2
    inside = r2 < 1.0 / (d * d - 1.0)
    covered = out.rast[0, ..., 3] > 0
    assert abs(int(covered.sum()) - math.pi * (f / math.sqrt(d * d - 1)) ** 2) < 30
    assert int((covered ^ inside).sum()) < 0.06 * int(inside.sum())  # only at the tessellated rim
    core = r2 < 0.6 / (d * d - 1.0)
    a = 1.0 + r2
    z_true = (d - torch.sqrt((d * d - a * (d * d - 1.0)).clamp_min(0))) / a  # ray t with z = t
    depth = out.depth[0, ..., 0]
    assert (depth[core] - z_true[core]).abs().max() < 0.02  # tessellation error of a 24-ring sphere
    assert (depth[~covered] == 0).all()
    # Coverage mask (antialiased) is in [0, 1] and white texture renders white where covered.
    assert out.mask.min() >= 0 and out.mask.max() <= 1 + 1e-9
    torch.testing.assert_close(out.image[0][covered & core], torch.ones(int((covered & core).sum()), 3,
                                                                         dtype=D))


def test_background_shows_where_empty() -> None:
    renderer, v, cam = _sphere_scene(size=32)
    bg = torch.full((1, 32, 32, 3), 0.25, dtype=D)
    out = renderer.render(v, cam, torch.zeros(1, 3, 4, 4, dtype=D), background=bg)
    empty = out.mask[0, ..., 0] == 0
    assert empty.any()
    torch.testing.assert_close(out.image[0][empty], torch.full((int(empty.sum()), 3), 0.25, dtype=D))


def test_visible_vertices_match_analytic_horizon() -> None:
    renderer, v, cam = _sphere_scene(size=96, focal=90.0, rings=16)
    vis = renderer.visible_vertices(v, cam)[0]
    # From distance d the visible cap of a unit sphere is z > 1/d; skip a margin around the horizon.
    z = v[0, :, 2]
    clear_front, clear_back = z > 1 / 3 + 0.12, z < 1 / 3 - 0.12
    assert vis[clear_front].all()
    assert not vis[clear_back].any()


def test_render_gradcheck_wrt_vertices_at_interior_pixels() -> None:
    v, f, uv, uf = grid(2, 2, width=0.6, height=0.5)
    renderer = MeshRenderer(f, uf, uv, "cpu", backend=TorchBackend("cpu"), antialias=False)
    gen = torch.Generator().manual_seed(5)
    v = v.to(D)
    v[:, 2] = torch.rand(v.shape[0], generator=gen, dtype=D) * 0.1  # not planar
    tex = torch.rand(1, 3, 6, 6, generator=gen, dtype=D)
    K = torch.tensor([[20.0, 0.0, 8.0], [0.0, 20.0, 8.0], [0.0, 0.0, 1.0]], dtype=D)
    cam = Camera(K, torch.eye(3, dtype=D), torch.tensor([0.0, 0.0, 1.0], dtype=D), 16, 16)
    interior = renderer.render(v[None], cam, tex).rast[0, ..., 3] > 0
    interior = interior & interior.roll(1, 0) & interior.roll(-1, 0) & interior.roll(1, 1) & interior.roll(-1, 1)

    def image(verts: torch.Tensor, texture: torch.Tensor) -> torch.Tensor:
        return renderer.render(verts, cam, texture).image[0][interior]

    verts = v[None].clone().requires_grad_(True)
    # fast_mode checks random directional derivatives (each a full finite difference) to stay quick.
    assert torch.autograd.gradcheck(image, (verts, tex.clone().requires_grad_(True)), eps=1e-6, atol=1e-6,
                                    fast_mode=True)


def test_unwrap_of_a_render_returns_the_texture_where_visible() -> None:
    renderer, v, cam = _sphere_scene(size=128, focal=120.0, rings=24)
    gen = torch.Generator().manual_seed(6)
    coarse = torch.rand(1, 3, 4, 8, generator=gen, dtype=D)
    texture = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    image = renderer.render(v, cam, texture).image
    unwrapped, visibility = renderer.unwrap(image, v, cam, 32)
    assert unwrapped.shape == (1, 3, 32, 32) and visibility.shape == (1, 1, 32, 32)
    vis = visibility[0, 0] > 0
    assert 0.15 < float(vis.float().mean()) < 0.5  # about a third of the sphere faces the camera
    # Compare away from the grazing rim: texel surface points facing the camera.
    points, _ = renderer.texel_positions(v, 32)
    facing = (points[0] / points[0].norm(dim=-1, keepdim=True))[..., 2] > 0.6
    check = vis & facing
    assert check.sum() > 50
    err = (unwrapped[0] - texture[0]).abs().amax(0)[check]
    assert float(err.mean()) < 0.02 and float(err.max()) < 0.12
    assert (unwrapped[0][:, ~vis] == 0).all()
    # Visible texels face the camera; the view cosine agrees with the sphere's analytic normals.
    cosine = renderer.texel_view_cosine(v, cam, 32)[0, 0]
    assert (cosine[vis] > -0.05).all()
    centre = cam.center()[0]
    analytic = ((centre - points[0]) * points[0]).sum(-1) / (centre - points[0]).norm(dim=-1) / points[0].norm(
        dim=-1)
    texel_covered = renderer.uv_rast(32)[0, ..., 3] > 0
    assert (cosine - analytic)[texel_covered].abs().max() < 0.05


def test_backend_selection(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_backend("cpu").name == "torch"
    monkeypatch.setenv("DLATRACK_RENDER_BACKEND", "torch")
    assert get_backend("cpu").name == "torch"
    monkeypatch.setenv("DLATRACK_RENDER_BACKEND", "opengl")
    with pytest.raises(ValueError, match="DLATRACK_RENDER_BACKEND"):
        get_backend("cpu")
    with pytest.raises(RuntimeError, match="CUDA"):
        get_backend("cpu", "nvdiffrast")


def test_renderer_validates_topology() -> None:
    _, f, uv, uf = grid(1, 1)
    with pytest.raises(ValueError, match="uv_faces"):
        MeshRenderer(f, uf[:1], uv, "cpu")
    with pytest.raises(ValueError, match="out of range"):
        MeshRenderer(f, uf + 10, uv, "cpu")


def test_batched_cameras_render_like_single_ones() -> None:
    renderer, v, cam = _sphere_scene(size=32, focal=40.0, rings=8)
    R2, t2 = look_at(torch.tensor([1.0, 0.5, 2.5], dtype=D), torch.zeros(3, dtype=D),
                     torch.tensor([0.0, 1.0, 0.0], dtype=D))
    both = Camera(cam.K.expand(2, 3, 3), torch.stack([cam.R[0], R2]), torch.stack([cam.t[0], t2]), 32, 32)
    texture = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(7), dtype=D)
    batched = renderer.render(v.expand(2, -1, -1), both, texture)
    for b in range(2):
        single_cam = Camera(both.K[b], both.R[b], both.t[b], 32, 32)
        single = renderer.render(v, single_cam, texture[b:b + 1])
        torch.testing.assert_close(batched.image[b:b + 1], single.image)
        torch.testing.assert_close(batched.depth[b:b + 1], single.depth)
        torch.testing.assert_close(renderer.visible_vertices(v.expand(2, -1, -1), both)[b:b + 1],
                                   renderer.visible_vertices(v, single_cam))
