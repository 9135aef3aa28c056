"""UV space (models/uv_space.py) against the texture layout's own definition: texel (row i, col j) shows the
surface point at u = (j + 0.5) / T, v = 1 - (i + 0.5) / T, so any attribute affine in (u, v) is reproduced
exactly there; texels outside the UV layout are zero. Normals of tilted and curved sheets against their
analytic values. Written against the mutants mutmut found untested in models/ (bench/RESULTS.md,
"Mutation score")."""

from __future__ import annotations

import math

import torch
from grid_mesh import grid
from toy_lightstage import dome_topology

from dlatrack_engine.avatar.runtime import TopologyTensors
from dlatrack_engine.models.uv_space import UVAtlas
from dlatrack_engine.render.mesh_renderer import MeshRenderer

T = 10
LOW, HIGH = 0.2, 0.8  # the UV layout covers [0.2, 0.8]²: texel centres 0.25 ... 0.75, rows and cols 2-7


def _sheet(rows: int = 3, cols: int = 4):
    """A grid whose vertex order differs from its UV order (faces != uv_faces), UVs squeezed into
    [LOW, HIGH]²: returns (faces, uv_faces, uvs, perm) with vertex perm[k] carrying UV k."""
    _, uv_faces, uvs, _ = grid(rows, cols)
    uvs = LOW + (HIGH - LOW) * uvs
    perm = torch.randperm(uvs.shape[0], generator=torch.Generator().manual_seed(0))
    return perm[uv_faces], uv_faces, uvs, perm


def _atlas(rows: int = 3, cols: int = 4):
    faces, uv_faces, uvs, perm = _sheet(rows, cols)
    return UVAtlas(MeshRenderer(faces, uv_faces, uvs, "cpu"), T), uvs, perm


def _per_vertex(per_uv: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Attributes given per UV [B, U, C] -> per vertex [B, V, C] (vertex perm[k] carries UV k)."""
    out = torch.empty_like(per_uv)
    out[:, perm] = per_uv
    return out


def _centres() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    j, i = torch.meshgrid(torch.arange(T), torch.arange(T), indexing="xy")
    u, v = (j + 0.5) / T, 1.0 - (i + 0.5) / T
    inside = (u > LOW) & (u < HIGH) & (v > LOW) & (v < HIGH)
    return u.double(), v.double(), inside


def test_affine_attributes_land_on_their_texel_centres():
    atlas, uvs, perm = _atlas()
    u, v = uvs[:, 0].double(), uvs[:, 1].double()
    per_uv = torch.stack(
        [
            torch.stack([u, v, torch.ones_like(u)], -1),
            torch.stack([3.0 * u - v + 0.5, -2.0 * v, torch.full_like(u, 7.0)], -1),
        ]
    )
    out = atlas.to_texture(_per_vertex(per_uv, perm))
    assert out.shape == (2, 3, T, T) and out.dtype == torch.float64
    cu, cv, inside = _centres()
    expected = torch.stack(
        [torch.stack([cu, cv, torch.ones_like(cu)]), torch.stack([3.0 * cu - cv + 0.5, -2.0 * cv, 7.0 + 0 * cu])]
    ) * inside
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert torch.equal(atlas.mask, inside.float().view(1, 1, T, T))
    assert int(inside.sum()) == 36


def test_single_channel_attributes_and_gradients_reach_the_vertices():
    atlas, uvs, perm = _atlas()
    heights = _per_vertex(uvs[None, :, :1].double(), perm).requires_grad_()  # one channel: u
    out = atlas.to_texture(heights)
    cu, _, inside = _centres()
    torch.testing.assert_close(out[0, 0], cu * inside, atol=1e-6, rtol=0)
    out.sum().backward()
    # Each covered texel's weights sum to 1, so the gradient of the sum sums to the covered texel count.
    assert abs(float(heights.grad.sum()) - 36.0) < 1e-5
    assert float(heights.grad.min()) >= 0.0


def test_normals_of_a_tilted_sheet_rotated_into_the_camera_frame():
    """A plane z = a·x + b·y has the normal (-a, -b, 1)/norm everywhere; `rotation` R maps it to R·n."""
    faces, uv_faces, uvs, perm = _sheet()
    atlas = UVAtlas(MeshRenderer(faces, uv_faces, uvs, "cpu"), T)
    xy = uvs - 0.5
    planes = [(0.3, -0.6), (-1.0, 0.2)]
    verts = torch.stack([torch.cat([xy, (a * xy[:, :1] + b * xy[:, 1:])], -1) for a, b in planes])
    verts = _per_vertex(verts, perm)
    truth = torch.nn.functional.normalize(torch.tensor([[-a, -b, 1.0] for a, b in planes]), dim=1)
    _, _, inside = _centres()
    normals = atlas.normals(verts)
    torch.testing.assert_close(normals, truth[:, :, None, None] * inside, atol=1e-5, rtol=0)
    c, s = math.cos(0.7), math.sin(0.7)
    rotation = torch.stack([torch.tensor([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]),
                            torch.tensor([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])])  # fmt: skip
    rotated = atlas.normals(verts, rotation)
    expected = torch.einsum("bij,bj->bi", rotation, truth)
    torch.testing.assert_close(rotated, expected[:, :, None, None] * inside, atol=1e-5, rtol=0)


def test_normals_of_a_curved_sheet_are_unit_length():
    """On a cylinder x² + z² = 1 the normals are horizontal and turn with the surface; interpolated across a
    face they are shorter than 1 and must be renormalised per texel."""
    faces, uv_faces, uvs, perm = _sheet(rows=2, cols=3)
    angle = (uvs[:, 0] - 0.5) * 2.4  # ±0.72 rad across the sheet: 0.48 rad per column of faces
    verts = torch.stack([torch.sin(angle), uvs[:, 1], torch.cos(angle)], -1)[None]
    atlas = UVAtlas(MeshRenderer(faces, uv_faces, uvs, "cpu"), T)
    normals = atlas.normals(_per_vertex(verts, perm))
    _, _, inside = _centres()
    length = normals.norm(dim=1)[0]
    torch.testing.assert_close(length[inside], torch.ones(int(inside.sum())), atol=1e-5, rtol=0)
    assert float(length[~inside].abs().max()) == 0.0
    assert float(normals[0, 1].abs().max()) < 1e-5  # no vertical component on a vertical cylinder
    # The normal turns with the surface: its angle grows strictly along every row, inside the sheet's ±0.72.
    angle = torch.atan2(normals[0, 0], normals[0, 2])[2:8, 2:8]
    assert bool((angle.diff(dim=1) > 0.01).all()) and float(angle.abs().max()) < 0.72


def test_from_topology_matches_the_renderer_built_atlas():
    topo = dome_topology(6)
    direct = UVAtlas(MeshRenderer(topo.faces, topo.uv_faces, topo.uvs, "cpu"), 16)
    for source in (topo, TopologyTensors.from_topology(topo, torch.device("cpu"))):
        atlas = UVAtlas.from_topology(source, 16)
        assert atlas.texture_size == 16
        for name in ("texel_index", "bary", "corners", "mask", "faces"):
            assert torch.equal(getattr(atlas, name), getattr(direct, name)), name
    verts = torch.as_tensor(topo.neutral, dtype=torch.float32)[None]
    assert int(direct.mask.sum()) > 100 and torch.isfinite(direct.normals(verts)).all()
