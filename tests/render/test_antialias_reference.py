"""torch_antialias against references: edge adjacency against a brute-force search, blended values against
the analytic crossing of slanted and occluding edges, and a closed mesh against its front faces alone."""

from __future__ import annotations

import math

import pytest
import torch

from dlatrack_engine.render import Camera, look_at
from dlatrack_engine.render import torch_antialias as aa
from dlatrack_engine.render.camera import clip_from_world
from dlatrack_engine.render.primitives import uv_sphere
from dlatrack_engine.render.torch_backend import TorchBackend

BACKEND = TorchBackend("cpu")
D = torch.float64
QUAD = torch.tensor([[0, 1, 2], [0, 2, 3]])


def _clip(xy: list[list[float]], H: int, W: int, z: float = 0.0) -> torch.Tensor:
    """Pixel coordinates -> clip positions [1, N, 4] at NDC depth z (w = 1)."""
    p = torch.tensor(xy, dtype=D)
    return torch.stack([2 * p[:, 0] / W - 1, 2 * p[:, 1] / H - 1, torch.full_like(p[:, 0], z),
                        torch.ones_like(p[:, 0])], -1)[None]


def _mask_aa(pos: torch.Tensor, tri: torch.Tensor, H: int, W: int) -> torch.Tensor:
    rast = BACKEND.rasterize(pos, tri, (H, W))
    return BACKEND.antialias((rast[..., 3:] > 0).to(D), rast, pos, tri)[0, ..., 0]


def _brute_force_adjacency(tri: torch.Tensor) -> torch.Tensor:
    out = torch.full(tri.shape, -1, dtype=torch.long)
    faces = [set(f) for f in tri.tolist()]
    for f, corners in enumerate(tri.tolist()):
        for k in range(3):
            edge = {corners[k], corners[(k + 1) % 3]}
            others = [g for g, s in enumerate(faces) if g != f and edge <= s]
            assert len(others) <= 1, "the test meshes are manifold"
            out[f, k] = others[0] if others else -1
    return out


def test_edge_adjacency_matches_brute_force_and_is_cached_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aa, "_ADJACENCY_CACHE", [])  # a cold cache: the search itself runs
    _, faces, _, _ = uv_sphere(4, 6)
    gen = torch.Generator().manual_seed(11)
    relabel = torch.randperm(int(faces.max()) + 1, generator=gen)
    tri = relabel[faces.long()][torch.randperm(faces.shape[0], generator=gen)][:-3].int()  # an open mesh
    adjacency = aa.edge_adjacency(tri)
    expected = _brute_force_adjacency(tri)
    assert (expected < 0).any() and (expected >= 0).any()
    assert torch.equal(adjacency, expected)
    assert aa.edge_adjacency(tri.clone()) is adjacency  # the same topology, compared by value
    for n in range(aa._CACHE_SIZE):  # other topologies push it out of the cache
        aa.edge_adjacency(torch.tensor([[0, 1, 2], [2, 1, 3 + n]]))
    assert aa.edge_adjacency(tri) is not adjacency
    assert len(aa._ADJACENCY_CACHE) == aa._CACHE_SIZE
    assert aa.edge_adjacency(torch.zeros(0, 3, dtype=torch.int32)).shape == (0, 3)  # an empty mesh


def test_steep_slanted_edge_blends_by_its_crossing_in_each_row() -> None:
    # A quad whose only edge inside the image runs from (6.2, -4) to (10.9, 28): the covered part lies to its
    # right, so pixel i of row j shows clamp(i + 1 - x_c, 0, 1), x_c = the edge's x at the row's centre.
    H, W = 24, 20
    top, bottom = (6.2, -4.0), (10.9, 28.0)
    pos = _clip([list(top), [W + 6.0, -4.0], [W + 6.0, H + 4.0], list(bottom)], H, W)
    got = _mask_aa(pos, QUAD, H, W)
    y = torch.arange(H, dtype=D)[:, None] + 0.5
    x_c = top[0] + (y - top[1]) * (bottom[0] - top[0]) / (bottom[1] - top[1])
    expected = (torch.arange(W, dtype=D)[None] + 1 - x_c).clamp(0, 1)
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("W", [16, 1])
def test_shallow_edges_blend_vertically(W: int) -> None:
    # A band across the whole width: slanted top edge from y = 5.3 to 7.9, horizontal bottom edge at 20.6.
    # Only vertical pixel pairs can blend it (with W = 1 there are no horizontal pairs at all).
    H = 24
    left, right = (-6.0, 5.3), (W + 6.0, 7.9)
    pos = _clip([list(left), list(right), [W + 6.0, 20.6], [-6.0, 20.6]], H, W)
    got = _mask_aa(pos, QUAD, H, W)
    x = torch.arange(W, dtype=D)[None] + 0.5
    y_top = left[1] + (x - left[0]) * (right[1] - left[1]) / (right[0] - left[0])
    rows = torch.arange(H, dtype=D)[:, None]
    expected = torch.minimum((rows + 1 - y_top).clamp(0, 1), (20.6 - rows).clamp(0, 1))
    torch.testing.assert_close(got, expected, atol=1e-9, rtol=0)


@pytest.mark.parametrize("near_first", [True, False])
def test_occluding_edge_blends_the_near_colour_over_the_far_one(near_first: bool) -> None:
    # A far quad (colour 0.25) fills the image; a near quad (colour 1) covers x > 10.8 (near_first: its faces
    # come first, the edge in face 0) or x < 10.3 (its faces come second). The near quad's edge is the
    # silhouette: only the depth test tells which triangle's edges to look at.
    H, W = 12, 20
    far = _clip([[-5, -5], [W + 5, -5], [W + 5, H + 5], [-5, H + 5]], H, W, z=0.5)
    edge = 10.8 if near_first else 10.3
    xs = [edge, W + 5.0] if near_first else [-5.0, edge]
    near = _clip([[xs[0], -5], [xs[1], -5], [xs[1], H + 5], [xs[0], H + 5]], H, W, z=-0.5)
    pos = torch.cat([near, far] if near_first else [far, near], 1)
    tri = torch.cat([QUAD.flip(0), QUAD + 4]).int()
    colour = torch.tensor([1.0] * 4 + [0.25] * 4 if near_first else [0.25] * 4 + [1.0] * 4, dtype=D)[None, :, None]
    rast = BACKEND.rasterize(pos, tri, (H, W))
    got = BACKEND.antialias(BACKEND.interpolate(colour, rast, tri), rast, pos, tri)[0, ..., 0]
    i = torch.arange(W, dtype=D)
    coverage = (i + 1 - edge).clamp(0, 1) if near_first else (edge - i).clamp(0, 1)
    torch.testing.assert_close(got, (0.25 + 0.75 * coverage).expand(H, W), atol=1e-9, rtol=0)


TETRAHEDRON = (torch.tensor([[0.0, 0.9, 0.3], [-0.8, -0.5, 0.3], [0.8, -0.5, 0.3], [0.0, 0.0, -0.6]]),
               torch.tensor([[0, 1, 2], [0, 3, 1], [1, 3, 2], [2, 3, 0]], dtype=torch.int32))


@pytest.mark.parametrize("mesh", ["sphere", "tetrahedron"])
def test_closed_mesh_antialiases_like_its_front_faces_alone(mesh: str) -> None:
    # The silhouette of a closed mesh is where front faces meet back faces; with the back faces removed it
    # becomes the open mesh's boundary. Both must blend the same pixels by the same amounts. The tetrahedron
    # is seen face-on: its one front face has only back-facing neighbours.
    v, faces = uv_sphere(8, 16)[:2] if mesh == "sphere" else TETRAHEDRON
    K = torch.tensor([[40.0, 0.0, 16.3], [0.0, 40.0, 15.7], [0.0, 0.0, 1.0]], dtype=D)
    eye = [0.4, 0.3, 3.0] if mesh == "sphere" else [0.0, 0.0, 3.0]
    R, t = look_at(torch.tensor(eye, dtype=D), torch.zeros(3, dtype=D), torch.tensor([0.0, 1.0, 0.0], dtype=D))
    H = W = 32
    pos = clip_from_world(v[None].to(D), Camera(K, R, t, W, H))
    sx, sy = (pos[0, :, 0] / pos[0, :, 3] + 1) * W / 2, (pos[0, :, 1] / pos[0, :, 3] + 1) * H / 2
    f = faces.long()
    signed = ((sx[f[:, 1]] - sx[f[:, 0]]) * (sy[f[:, 2]] - sy[f[:, 0]])
              - (sy[f[:, 1]] - sy[f[:, 0]]) * (sx[f[:, 2]] - sx[f[:, 0]]))
    closed_rast = BACKEND.rasterize(pos, faces, (H, W))
    visible = closed_rast[0, ..., 3][closed_rast[0, ..., 3] > 0].long() - 1
    front_sign = torch.sign(signed[visible])
    assert (front_sign == front_sign[0]).all()
    front = faces[torch.sign(signed) == front_sign[0]]
    assert 0 < front.shape[0] < faces.shape[0]
    colour = torch.cat([torch.rand(1, v.shape[0], 3, dtype=D, generator=torch.Generator().manual_seed(3)),
                        torch.ones(1, v.shape[0], 1, dtype=D)], -1)
    images = []
    for tri in (faces, front):
        rast = BACKEND.rasterize(pos, tri, (H, W))
        images.append(BACKEND.antialias(BACKEND.interpolate(colour, rast, tri), rast, pos, tri))
    torch.testing.assert_close(images[0], images[1], atol=1e-12, rtol=0)
    mask = images[0][0, ..., 3]
    blended = (mask > 0) & (mask < 1)
    assert blended.sum() > 40  # the rim, all around
    if mesh == "tetrahedron":
        assert front.shape[0] == 1
        return
    disc = math.pi * (40.0 / math.sqrt(3.0**2 + 0.25 - 1.0)) ** 2  # the true sphere's; the 8-ring one is inscribed
    assert 0.9 * disc < float(mask.sum()) < disc
