"""render.primitives.uv_sphere: every face corner sits where its UV says on the sphere; counts, poles, radius."""

from __future__ import annotations

import math

import pytest
import torch

from dlatrack_engine.render.primitives import uv_sphere


@pytest.mark.parametrize(("rings", "segments", "radius"), [(2, 3, 1.0), (5, 7, 2.0)])
def test_face_corners_lie_where_their_uvs_point(rings: int, segments: int, radius: float) -> None:
    vertices, faces, uvs, uv_faces = uv_sphere(rings, segments, radius)
    assert vertices.shape == (2 + (rings - 1) * segments, 3)
    assert faces.shape == uv_faces.shape == (2 * segments * (rings - 1), 3)
    assert uvs.shape == ((rings + 1) * (segments + 1), 2)
    assert (faces[:, 0] != faces[:, 1]).all() and (faces[:, 1] != faces[:, 2]).all()
    assert (faces[:, 2] != faces[:, 0]).all()
    torch.testing.assert_close(vertices.norm(dim=-1), torch.full((vertices.shape[0],), radius))
    # u = longitude / 2π (0 .. 1 across the seam), v = 1 at the north pole (+Y), 0 at the south pole.
    assert float(uvs[:, 0].min()) == 0.0 and float(uvs[:, 0].max()) == 1.0
    uv = uvs[uv_faces.long()].double()  # [F, 3, 2]
    theta, phi = math.pi * (1.0 - uv[..., 1]), 2.0 * math.pi * uv[..., 0]
    expected = radius * torch.stack([torch.sin(theta) * torch.cos(phi), torch.cos(theta),
                                     -torch.sin(theta) * torch.sin(phi)], -1)
    torch.testing.assert_close(vertices[faces.long()].double(), expected, atol=1e-6, rtol=0)


def test_defaults_and_limits() -> None:
    vertices, faces, _, _ = uv_sphere()
    assert vertices.shape == (2 + 15 * 32, 3) and faces.shape == (2 * 32 * 15, 3)
    for rings, segments in ((1, 8), (4, 2)):
        with pytest.raises(ValueError, match=rf"^uv_sphere: need rings >= 2 and segments >= 3, got {rings}, "
                                             rf"{segments}$"):
            uv_sphere(rings, segments)
