"""torch_raster at its edges: pixel centres exactly on triangle edges, the depth limits, the smallest
triangle, the z-test against an analytic overlap, and z/w and barycentrics to float64 precision."""

from __future__ import annotations

import itertools

import pytest
import torch

from dlatrack_engine.render.camera import clip_from_camera
from dlatrack_engine.render.torch_raster import rasterize

D = torch.float64
ONE = torch.tensor([[0, 1, 2]], dtype=torch.int32)


def _clip(xy: list[list[float]], H: int, W: int, z: float = 0.0) -> torch.Tensor:
    p = torch.tensor(xy, dtype=D)
    return torch.stack([2 * p[:, 0] / W - 1, 2 * p[:, 1] / H - 1, torch.full_like(p[:, 0], z),
                        torch.ones_like(p[:, 0])], -1)[None]


def _centres(H: int, W: int) -> tuple[torch.Tensor, torch.Tensor]:
    jj, ii = torch.meshgrid(torch.arange(H, dtype=D) + 0.5, torch.arange(W, dtype=D) + 0.5, indexing="ij")
    return ii, jj


def test_coverage_with_edges_through_pixel_centres_ignores_vertex_order() -> None:
    # All three edges run through pixel centres: x = 1.5, y = 1.5 and x + y = 8 (8 x 8 pixels: exact in
    # binary through NDC and back). Centres on an edge count as inside, whatever the winding or first vertex.
    H, W = 8, 8
    corners = [[1.5, 1.5], [6.5, 1.5], [1.5, 6.5]]
    ii, jj = _centres(H, W)
    expected = (ii >= 1.5) & (jj >= 1.5) & (ii + jj <= 8.0)
    assert expected.sum() == 21
    for order in itertools.permutations(range(3)):
        rast = rasterize(_clip([corners[k] for k in order], H, W), ONE, (H, W))
        assert torch.equal(rast[0, ..., 3] > 0, expected), order


def test_the_smallest_triangle_covers_its_one_centre() -> None:
    # Legs of one pixel: twice its area is exactly 1, and its hypotenuse runs through the centre (2.5, 2.5).
    rast = rasterize(_clip([[2.0, 2.0], [3.0, 2.0], [2.0, 3.0]], 8, 8), ONE, (8, 8))
    covered = torch.nonzero(rast[0, ..., 3] > 0).tolist()
    assert covered == [[2, 2]]
    torch.testing.assert_close(rast[0, 2, 2, :2], torch.tensor([0.0, 0.5], dtype=D))


def test_depth_limits_are_inclusive() -> None:
    tri = [[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]]
    for z, drawn in ((-1.0, True), (1.0, True), (-1.5, False), (1.01, False)):
        rast = rasterize(_clip(tri, 8, 8, z=z), ONE, (8, 8))
        assert bool((rast[..., 3] > 0).any()) is drawn, z


@pytest.mark.parametrize(("z_near", "z_far"), [(-0.5, 0.5), (0.6, 0.9), (0.9999, 0.99995)])
def test_the_nearer_triangle_wins_the_analytic_overlap(z_near: float, z_far: float) -> None:
    H, W = 8, 8
    near = _clip([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]], H, W, z=z_near)  # x + y < 8
    far = _clip([[0.0, 0.0], [8.0, 0.0], [8.0, 8.0]], H, W, z=z_far)  # y < x
    ii, jj = _centres(H, W)
    overlap = (ii + jj < 8.0) & (jj < ii)
    assert overlap.sum() > 5
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    for first, near_id in ((near, 1), (far, 2)):
        pos = torch.cat([first, far if first is near else near], 1)
        rast = rasterize(pos, tri, (H, W))[0]
        assert torch.equal(rast[..., 3][overlap], torch.full((int(overlap.sum()),), float(near_id), dtype=D))
        torch.testing.assert_close(rast[..., 2][overlap], torch.full((int(overlap.sum()),), z_near, dtype=D))


def test_intersecting_slanted_triangles_meet_on_their_analytic_line() -> None:
    # NDC depth z = 0.2 + 0.05 (x - 8) on one triangle and z = 0.2 - 0.05 (x - 8) on the other (pixels): they
    # cross at x = 8; left of it the first is nearer, right of it the second. Depths vary per vertex.
    H, W = 8, 16
    xy = [[0.0, 0.0], [16.0, 0.0], [8.0, 8.0]]

    def plane(slope: float) -> torch.Tensor:
        pos = _clip(xy, H, W)
        pos[0, :, 2] = 0.2 + slope * (torch.tensor([p[0] for p in xy], dtype=D) - 8.0)
        return pos

    tri = torch.tensor([[0, 1, 2], [5, 3, 4]], dtype=torch.int32)  # the second listed from another vertex
    rast = rasterize(torch.cat([plane(0.05), plane(-0.05)], 1), tri, (H, W))[0]
    ii, _ = _centres(H, W)
    covered = rast[..., 3] > 0
    assert covered.sum() > 40
    expected = torch.where(ii < 8.0, 1.0, 2.0).to(D)
    assert torch.equal(rast[..., 3][covered], expected[covered])
    torch.testing.assert_close(rast[..., 2][covered], (0.2 - 0.05 * (ii - 8.0).abs())[covered], atol=1e-12, rtol=0)


def test_depth_and_barycentrics_of_a_slanted_plane_to_float64_precision() -> None:
    # The camera-space plane z = 1 + 0.8 x through a pinhole with 12 x 10 pixels (1/12 is no binary fraction).
    H, W, f, cx, cy = 10, 12, 9.0, 6.1, 4.9
    K = torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]], dtype=D)
    xy = torch.tensor([[-0.6, -0.6], [0.6, -0.6], [0.6, 0.6], [-0.6, 0.6]], dtype=D)
    cam_pts = torch.stack([xy[:, 0], xy[:, 1], 1.0 + 0.8 * xy[:, 0]], -1)[None]
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    rast = rasterize(clip_from_camera(cam_pts, K, W, H), tri, (H, W))[0]
    covered = rast[..., 3] > 0
    assert covered.sum() > 60
    ii, jj = _centres(H, W)
    rx, ry = (ii - cx) / f, (jj - cy) / f  # the pixel ray (rx z, ry z, z)
    z = 1.0 / (1.0 - 0.8 * rx)
    near, far = 0.01, 10.0
    z_ndc = (far + near) / (far - near) - 2.0 * far * near / (far - near) / z
    torch.testing.assert_close(rast[..., 2][covered], z_ndc[covered], atol=1e-12, rtol=0)
    u, v = rast[..., 0], rast[..., 1]
    corners = tri.long()[rast[..., 3].long().clamp_min(1) - 1]  # [H, W, 3]
    P = cam_pts[0][corners]  # [H, W, 3 corners, 3]
    point = u[..., None] * P[..., 0, :] + v[..., None] * P[..., 1, :] + (1 - u - v)[..., None] * P[..., 2, :]
    torch.testing.assert_close(point[covered], torch.stack([rx * z, ry * z, z], -1)[covered], atol=1e-12, rtol=0)


def test_rasterize_rejects_bad_shapes() -> None:
    pos = _clip([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], 4, 4)
    with pytest.raises(ValueError, match=r"^rasterize: pos must be \[B, V, 4\] clip coordinates, got \(1, 3, 3\)$"):
        rasterize(pos[..., :3], ONE, (4, 4))
    with pytest.raises(ValueError, match=r"^rasterize: pos must be \[B, V, 4\] clip coordinates, got \(3, 4\)$"):
        rasterize(pos[0], ONE, (4, 4))
    with pytest.raises(ValueError, match=r"^rasterize: tri must be \[F, 3\], got \(1, 4\)$"):
        rasterize(pos, torch.tensor([[0, 1, 2, 0]]), (4, 4))
    with pytest.raises(ValueError, match=r"^rasterize: tri must be \[F, 3\], got \(3,\)$"):
        rasterize(pos, ONE[0], (4, 4))
