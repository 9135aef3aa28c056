"""MeshRenderer's contracts: what RenderOutput holds, the default depth range and antialiasing, dtypes,
validation messages, texel coverage of a known UV layout, and the view cosine of a folded sheet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from grid_mesh import grid

from dlatrack_engine.render import Camera, MeshRenderer, look_at
from dlatrack_engine.render.backend import ENV_VAR
from dlatrack_engine.render.camera import clip_from_world

D = torch.float64
UP = torch.tensor([0.0, 1.0, 0.0], dtype=D)


def _camera(distance: float, size: int = 24, focal: float = 30.0) -> Camera:
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]], dtype=D)
    R, t = look_at(torch.tensor([0.0, 0.0, distance], dtype=D), torch.zeros(3, dtype=D), UP)
    return Camera(K, R, t, size, size)


def _sheet(scale: float = 1.0) -> tuple[MeshRenderer, torch.Tensor]:
    v, f, uv, uf = grid(2, 2)
    return MeshRenderer(f, uf, uv, "cpu", backend="torch"), (v * scale)[None].to(D)


def test_render_output_holds_the_clip_positions_and_texture_coordinates() -> None:
    renderer, v = _sheet()
    cam = _camera(2.0)
    texture = torch.rand(1, 3, 8, 8, dtype=D, generator=torch.Generator().manual_seed(31))
    out = renderer.render(v, cam, texture)
    torch.testing.assert_close(out.pos_clip, renderer.clip(v, cam))
    covered = out.rast[0, ..., 3] > 0
    assert covered.sum() > 100
    # The sheet spans x, y in [-0.5, 0.5] with u = x + 0.5, v = y + 0.5; texture rows run top-down: (u, 1 - v).
    point = out.uv[0][covered]  # sampled (u, 1 - v)
    depth = out.depth[0, ..., 0][covered]
    jj, ii = torch.nonzero(covered).unbind(1)
    x_world = (ii.to(D) + 0.5 - 12.0) / 30.0 * depth
    y_world = -(jj.to(D) + 0.5 - 12.0) / 30.0 * depth  # image y points down, world y up
    torch.testing.assert_close(point, torch.stack([x_world + 0.5, 1.0 - (y_world + 0.5)], -1), atol=1e-9, rtol=0)


def test_triangle_zero_renders_its_texture() -> None:
    renderer = MeshRenderer(torch.tensor([[0, 1, 2]]), torch.tensor([[0, 1, 2]]),
                            torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), "cpu", antialias=False)
    v = torch.tensor([[[-1.0, -1.0, 0.0], [1.0, -1.0, 0.0], [-1.0, 1.0, 0.0]]], dtype=D)
    out = renderer.render(v, _camera(2.0), torch.full((1, 3, 4, 4), 0.75, dtype=D))
    assert out.mask.dtype == D  # a coverage mask, even without antialiasing
    covered = out.rast[0, ..., 3] > 0
    assert covered.sum() > 50 and torch.equal(out.mask[0, ..., 0] > 0, covered)
    torch.testing.assert_close(out.image[0][covered], torch.full((int(covered.sum()), 3), 0.75, dtype=D))


def test_default_depth_range_and_antialiasing() -> None:
    renderer, v = _sheet()
    texture = torch.ones(1, 3, 4, 4, dtype=D)
    close = renderer.render(v * 0.2, _camera(0.3), texture)  # 30 cm away: inside the default 1 cm - 10 m
    mask = close.mask[0, ..., 0]
    assert (mask == 1).sum() > 50 and ((mask > 0) & (mask < 1)).any()  # silhouette pixels are blended
    assert renderer.render(v * 5.0, _camera(10.5), texture).mask.sum() == 0  # beyond 10 m: clipped
    short = MeshRenderer(renderer.faces, renderer.uv_faces, renderer.uvs, "cpu", far=2.0)
    torch.testing.assert_close(short.clip(v, _camera(1.5)), clip_from_world(v, _camera(1.5), far=2.0))
    assert short.render(v, _camera(3.0), texture).mask.sum() == 0
    assert short.depth_map(v, _camera(3.0))[0].abs().sum() == 0
    assert short.depth_map(v, _camera(1.5))[0].max() == pytest.approx(1.5)


def test_an_explicit_backend_beats_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_VAR, "no-such-backend")
    _, f, uv, uf = grid(1, 1)
    assert MeshRenderer(f, uf, uv, "cpu", backend="torch").backend.name == "torch"
    with pytest.raises(ValueError, match="no-such-backend"):
        MeshRenderer(f, uf, uv, "cpu")


def test_dtypes_follow_the_vertices_and_topology_is_stored_as_nvdiffrast_wants() -> None:
    v, f, uv, uf = grid(2, 2)
    renderer = MeshRenderer(f.numpy().astype(np.int64), uf.long(), uv.double().numpy(), "cpu")
    assert renderer.faces.dtype == torch.int32 and renderer.uv_faces.dtype == torch.int32
    assert renderer.uvs.dtype == torch.float32
    texture = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(32))
    cam = _camera(2.0)
    mixed = renderer.render(v[None].to(D), cam, texture)  # float32 texture, float64 vertices
    assert mixed.image.dtype == D and mixed.mask.dtype == D
    torch.testing.assert_close(mixed.image, renderer.render(v[None].to(D), cam, texture.to(D)).image)
    background = torch.full((1, 24, 24, 3), 0.5)
    assert renderer.render(v[None].to(D), cam, texture, background).image.dtype == D


def test_renderer_messages_name_the_bad_input() -> None:
    _, f, uv, uf = grid(1, 1)
    with pytest.raises(ValueError, match=r"^MeshRenderer: faces must be \[N, 3\], got \(2, 4\)$"):
        MeshRenderer(torch.zeros(2, 4, dtype=torch.int32), uf, uv, "cpu")
    with pytest.raises(ValueError, match=r"^MeshRenderer: uv_faces must be \[N, 3\], got \(6,\)$"):
        MeshRenderer(f, uf.reshape(-1), uv, "cpu")
    with pytest.raises(ValueError, match=r"^MeshRenderer: uvs must be \[N, 2\], got \(4, 3\)$"):
        MeshRenderer(f, uf, torch.zeros(4, 3), "cpu")
    with pytest.raises(ValueError, match=r"^MeshRenderer: uv_faces has 1 rows, faces has 2; they must match"):
        MeshRenderer(f, uf[:1], uv, "cpu")
    with pytest.raises(ValueError, match=r"^MeshRenderer: uv_faces index 4 is out of range for 4 uvs$"):
        MeshRenderer(f, torch.tensor([[0, 1, 2], [0, 2, 4]]), uv, "cpu")
    renderer, v = _sheet()
    with pytest.raises(ValueError, match=r"^MeshRenderer.render: texture must be \[B, 3, T, T\], got \(1, 4, 8, 8\)$"):
        renderer.render(v, _camera(2.0), torch.zeros(1, 4, 8, 8, dtype=D))
    with pytest.raises(ValueError, match=r"^MeshRenderer.unwrap: image must be \[1, 24, 24, C\] to match the vertices "
                                         r"and camera, got \(1, 24, 23, 3\)$"):
        renderer.unwrap(torch.zeros(1, 24, 23, 3, dtype=D), v, _camera(2.0), 8)


def test_texel_coverage_of_a_uv_layout_inside_the_texture() -> None:
    # UVs squeezed into [0.25, 0.75]²: on a 16² texture the texel centres (i + 0.5) / 16 inside are i = 4..11.
    v, f, uv, uf = grid(3, 3)
    renderer = MeshRenderer(f, uf, uv * 0.5 + 0.25, "cpu")
    _, covered = renderer.texel_positions(v[None].to(D), 16)
    expected = torch.zeros(16, 16, dtype=torch.bool)
    expected[4:12, 4:12] = True
    assert torch.equal(covered[0], expected)


def test_view_cosine_of_a_folded_sheet_uses_unit_normals() -> None:
    # Two wings at 45° meeting at a crease x = 0 (z = 0), falling back to z = -w at x = ±w. The crease's vertex
    # normal is +z, a wing's outer normal is (±1, 0, 1)/√2, and at |x| = s w the interpolated normal is their
    # mix (1 - s, s), which is shorter than 1 inside the wing: the cosine must use its direction only.
    w = 0.5
    ys = (0.5, -0.5)
    vertices = torch.tensor([[x, y, -abs(x)] for y in ys for x in (-w, 0.0, w)], dtype=D)  # rows top, bottom
    faces = torch.tensor([[1, 0, 3], [1, 3, 4], [1, 4, 5], [1, 5, 2]])  # crease top in two faces per wing
    uvs = (vertices[:, :2].float() + 0.5) * 0.75 + 0.125  # the layout leaves a border of empty texels
    renderer = MeshRenderer(faces, faces, uvs, "cpu")
    cam = _camera(0.8)  # closer than 1 m: the direction to the camera is shorter than 1 before normalising
    cosine = renderer.texel_view_cosine(vertices[None], cam, 16)[0, 0]
    points, covered = renderer.texel_positions(vertices[None], 16)
    points, covered = points[0], covered[0]
    assert covered.sum() > 100 and not covered.all()
    assert (cosine[~covered] == 0).all()
    s = points[..., 0].abs() / w
    wing = torch.stack([torch.sign(points[..., 0]), torch.zeros_like(s), torch.ones_like(s)], -1) / 2**0.5
    normal = (1 - s)[..., None] * torch.tensor([0.0, 0.0, 1.0], dtype=D) + s[..., None] * wing
    normal = normal / normal.norm(dim=-1, keepdim=True)
    to_camera = torch.tensor([0.0, 0.0, 0.8], dtype=D) - points
    expected = (normal * to_camera).sum(-1) / to_camera.norm(dim=-1)
    torch.testing.assert_close(cosine[covered], expected[covered], atol=1e-6, rtol=0)
