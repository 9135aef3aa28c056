"""The torch backend's four ops: exact coverage, perspective-correct barycentrics, and float64
finite-difference gradient checks (render.torch_raster / torch_ops / torch_antialias)."""

from __future__ import annotations

import pytest
import torch
from grid_mesh import grid

from dlatrack_engine.render.torch_backend import TorchBackend

BACKEND = TorchBackend("cpu")
D = torch.float64


def _screen_to_clip(xy: torch.Tensor, H: int, W: int, z: float = 0.0, w: float = 1.0) -> torch.Tensor:
    """Pixel coordinates [N, 2] -> clip positions [1, N, 4] with the given depth and w."""
    x = (2.0 * xy[:, 0] / W - 1.0) * w
    y = (2.0 * xy[:, 1] / H - 1.0) * w
    return torch.stack([x, y, torch.full_like(x, z * w), torch.full_like(x, w)], -1)[None].to(D)


def test_single_triangle_coverage_and_barycentrics() -> None:
    H, W = 12, 16
    corners = torch.tensor([[2.2, 1.3], [13.7, 3.1], [6.4, 10.8]], dtype=D)
    pos = _screen_to_clip(corners, H, W)
    rast = BACKEND.rasterize(pos, torch.tensor([[0, 1, 2]], dtype=torch.int32), (H, W))[0]
    jj, ii = torch.meshgrid(torch.arange(H, dtype=D) + 0.5, torch.arange(W, dtype=D) + 0.5, indexing="ij")
    # Analytic inside test against each edge.
    def edge(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (b[0] - a[0]) * (jj - a[1]) - (b[1] - a[1]) * (ii - a[0])
    e = [edge(corners[1], corners[2]), edge(corners[2], corners[0]), edge(corners[0], corners[1])]
    inside = (e[0] > 0) & (e[1] > 0) & (e[2] > 0)
    assert torch.equal(rast[..., 3] > 0, inside)
    # Barycentrics reproduce the pixel centres (w = 1: affine).
    u, v = rast[..., 0], rast[..., 1]
    x = u * corners[0, 0] + v * corners[1, 0] + (1 - u - v) * corners[2, 0]
    y = u * corners[0, 1] + v * corners[1, 1] + (1 - u - v) * corners[2, 1]
    torch.testing.assert_close(x[inside], ii[inside])
    torch.testing.assert_close(y[inside], jj[inside])
    assert (rast[~inside] == 0).all()


def test_shared_edges_are_watertight_and_chunking_is_invisible() -> None:
    H, W = 40, 48
    v, f, _, _ = grid(9, 11, width=30.3, height=22.7)
    gen = torch.Generator().manual_seed(3)
    interior = (v[:, 0].abs() < 15.0) & (v[:, 1].abs() < 11.0)
    v = v + interior[:, None] * torch.randn(v.shape, generator=gen) * 0.6 * torch.tensor([1.0, 1.0, 0.0])
    xy = v[:, :2].to(D) + torch.tensor([24.1, 19.9], dtype=D)
    pos = _screen_to_clip(xy, H, W)
    rast = BACKEND.rasterize(pos, f, (H, W))
    jj, ii = torch.meshgrid(torch.arange(H, dtype=D) + 0.5, torch.arange(W, dtype=D) + 0.5, indexing="ij")
    expected = (ii > 24.1 - 15.15) & (ii < 24.1 + 15.15) & (jj > 19.9 - 11.35) & (jj < 19.9 + 11.35)
    assert torch.equal(rast[0, ..., 3] > 0, expected), "cracks or overdraw along shared edges"
    small_chunks = TorchBackend("cpu", chunk_pairs=37).rasterize(pos, f, (H, W))
    assert torch.equal(small_chunks, rast)


def test_nearest_triangle_wins_regardless_of_order() -> None:
    H, W = 8, 8
    near = _screen_to_clip(torch.tensor([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]], dtype=D), H, W, z=-0.5)
    far = _screen_to_clip(torch.tensor([[0.0, 0.0], [8.0, 0.0], [8.0, 8.0]], dtype=D), H, W, z=0.5)
    for order in ((near, far), (far, near)):
        pos = torch.cat(order, 1)
        rast = BACKEND.rasterize(pos, torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32), (H, W))
        near_id = 1 if order[0] is near else 2
        overlap = (rast[0, ..., 2] < 0) & (rast[0, ..., 3] > 0)
        assert torch.all(rast[0, ..., 3][overlap] == near_id)
        assert torch.allclose(rast[0, ..., 2][rast[0, ..., 3] == near_id], torch.tensor(-0.5, dtype=D))
    # Behind the camera (w < 0) or beyond the far plane: nothing is drawn.
    behind = near.clone()
    behind[..., 3] = -1.0
    assert BACKEND.rasterize(behind, torch.tensor([[0, 1, 2]]), (H, W)).abs().sum() == 0
    beyond = _screen_to_clip(torch.tensor([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]], dtype=D), H, W, z=1.5)
    assert BACKEND.rasterize(beyond, torch.tensor([[0, 1, 2]]), (H, W)).abs().sum() == 0


def test_perspective_correct_interpolation_on_a_slanted_plane() -> None:
    # A plane z = 1 + 0.8 x in camera space seen by a pinhole camera: interpolated camera coordinates
    # must lie exactly on each pixel's ray, which affine (screen-space) interpolation would not do.
    H, W, f, c = 24, 24, 20.0, 12.0
    corners = torch.tensor([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]], dtype=D)
    cam_pts = torch.stack([corners[:, 0], corners[:, 1], 1.0 + 0.8 * corners[:, 0]], -1)[None]
    z = cam_pts[..., 2]
    u = f * cam_pts[..., 0] / cam_pts[..., 2] + c
    v = f * cam_pts[..., 1] / cam_pts[..., 2] + c
    pos = torch.stack([(2 * u / W - 1) * z, (2 * v / H - 1) * z, 0.5 * z, z], -1)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    rast = BACKEND.rasterize(pos, tri, (H, W))
    pts = BACKEND.interpolate(cam_pts, rast, tri)[0]
    covered = rast[0, ..., 3] > 0
    assert covered.sum() > 100
    jj, ii = torch.meshgrid(torch.arange(H, dtype=D) + 0.5, torch.arange(W, dtype=D) + 0.5, indexing="ij")
    torch.testing.assert_close((pts[..., 0] / pts[..., 2])[covered], ((ii - c) / f)[covered])
    torch.testing.assert_close((pts[..., 1] / pts[..., 2])[covered], ((jj - c) / f)[covered])
    torch.testing.assert_close(pts[..., 2][covered], (1.0 + 0.8 * pts[..., 0])[covered])
    torch.testing.assert_close(rast[0, ..., 2][covered], torch.full_like(pts[..., 2][covered], 0.5))


def _perspective_triangles() -> tuple[torch.Tensor, torch.Tensor]:
    pos = torch.tensor([[[-0.71, -0.62, 0.1, 1.3], [0.83, -0.55, 0.3, 0.9], [0.12, 0.77, -0.2, 1.1],
                         [0.95, 0.66, 0.2, 1.2]]], dtype=D)
    tri = torch.tensor([[0, 1, 2], [1, 3, 2]], dtype=torch.int32)
    return pos, tri


def test_rasterize_interpolate_gradcheck_wrt_positions_and_attributes() -> None:
    pos, tri = _perspective_triangles()
    attr = torch.randn(1, 4, 3, dtype=D, generator=torch.Generator().manual_seed(1))
    pos.requires_grad_(True)
    attr.requires_grad_(True)

    def render(p: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        rast = BACKEND.rasterize(p, tri, (10, 12))
        return torch.cat([BACKEND.interpolate(a, rast, tri), rast[..., :3]], -1)

    # fast_mode compares random directional derivatives (each a real finite difference): cheap and still
    # fails on any wrong Jacobian entry that the random directions touch (all, almost surely).
    assert torch.autograd.gradcheck(render, (pos, attr), eps=1e-6, atol=1e-6, fast_mode=True)
    # Full entry-by-entry check of the rasteriser's own outputs on a small image.
    assert torch.autograd.gradcheck(lambda p: BACKEND.rasterize(p, tri, (6, 7))[..., :3], (pos,), eps=1e-6,
                                    atol=1e-6)


def test_texture_samples_texel_centres_and_gradchecks() -> None:
    gen = torch.Generator().manual_seed(2)
    tex = torch.rand(2, 5, 7, 3, dtype=D, generator=gen)
    ii, jj = torch.meshgrid(torch.arange(7, dtype=D), torch.arange(5, dtype=D), indexing="xy")
    uv = torch.stack([(ii + 0.5) / 7, (jj + 0.5) / 5], -1)[None].expand(2, -1, -1, -1)
    torch.testing.assert_close(BACKEND.texture(tex, uv), tex)  # texel centres at (i + 0.5) / W
    # Clamp: beyond the border returns the edge texel.
    far = torch.tensor([[[[-3.0, 0.5 / 5]]]], dtype=D).expand(2, 1, 1, 2)
    torch.testing.assert_close(BACKEND.texture(tex, far)[:, 0, 0], tex[:, 0, 0])
    uv_q = (torch.rand(2, 4, 6, 2, dtype=D, generator=gen) * 0.9 + 0.05).requires_grad_(True)
    tex.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t, u: BACKEND.texture(t, u), (tex, uv_q), eps=1e-6, atol=1e-6)
    wrapped = BACKEND.texture(tex, uv_q + 1.0, boundary_mode="wrap")
    torch.testing.assert_close(wrapped, BACKEND.texture(tex, uv_q, boundary_mode="wrap"))
    with pytest.raises(ValueError, match="filter_mode"):
        BACKEND.texture(tex, uv_q, filter_mode="linear-mipmap-linear")


def _axis_aligned_quad(x0: float, x1: float, y0: float, y1: float, H: int, W: int) -> torch.Tensor:
    return _screen_to_clip(torch.tensor([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=D), H, W)


def test_antialias_gives_exact_edge_coverage_and_silhouette_gradients() -> None:
    H, W = 32, 32
    pos = _axis_aligned_quad(10.3, 20.7, 5.0, 25.0, H, W).requires_grad_(True)
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    rast = BACKEND.rasterize(pos, tri, (H, W))
    mask = (rast[..., 3:] > 0).to(D)
    aa = BACKEND.antialias(mask, rast, pos, tri)[0, ..., 0]
    # Rows 5..24 lie inside vertically: columns 10 and 20 are 70 % covered, 11..19 fully, others not.
    torch.testing.assert_close(aa[5:25, 10], torch.full((20,), 0.7, dtype=D))
    torch.testing.assert_close(aa[5:25, 20], torch.full((20,), 0.7, dtype=D))
    torch.testing.assert_close(aa[5:25, 11:20], torch.ones(20, 9, dtype=D))
    assert aa.sum().item() == pytest.approx(10.4 * 20.0, abs=1e-9)
    # Moving the right edge by one pixel changes the covered area by its height (20 px).
    aa.sum().backward()
    dx_pixels = pos.grad[0, :, 0] * 2.0 / W  # d area / d (pixel x)
    assert float(dx_pixels[1] + dx_pixels[2]) == pytest.approx(20.0, rel=0.06)
    assert float(dx_pixels[0] + dx_pixels[3]) == pytest.approx(-20.0, rel=0.06)


def test_antialias_gradcheck_wrt_positions_and_colour() -> None:
    pos, tri = _perspective_triangles()
    colour = torch.rand(1, 10, 12, 2, dtype=D, generator=torch.Generator().manual_seed(4))
    rast = BACKEND.rasterize(pos, tri, (10, 12))
    pos.requires_grad_(True)
    colour.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p, c: BACKEND.antialias(c, rast, p, tri), (pos, colour),
                                    eps=1e-6, atol=1e-6, fast_mode=True)
    changed = BACKEND.antialias(colour, rast, pos, tri) - colour
    assert changed.abs().sum() > 0, "no silhouette pixel was blended"


def test_batched_rasterization_matches_single() -> None:
    pos, tri = _perspective_triangles()
    shifted = pos.clone()
    shifted[..., 0] += 0.15 * shifted[..., 3]  # move right by 0.15 NDC
    pos2 = torch.cat([pos, shifted])
    batched = BACKEND.rasterize(pos2, tri, (10, 12))
    for b in range(2):
        torch.testing.assert_close(batched[b:b + 1], BACKEND.rasterize(pos2[b:b + 1], tri, (10, 12)))
