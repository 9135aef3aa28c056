"""The checking rasteriser and the DAM-texture unwrapping on scenes whose answer is known."""

from __future__ import annotations

import numpy as np

from dlatrack_engine.sample.raster import mask_iou, project, rasterize
from dlatrack_engine.sample.unwrap import unwrap_view, uv_raster


def test_rasterize_covers_pixel_centres_and_keeps_the_nearest():
    xy = np.array([[1.0, 1.0], [9.0, 1.0], [9.0, 9.0], [1.0, 9.0]])
    quad = np.array([[0, 1, 2], [0, 2, 3]])
    near = rasterize(xy, np.full(4, 1.0), quad, 10, 10)
    assert near.coverage.sum() == 64, "pixel centres 1.5 .. 8.5 in both axes"
    assert not near.coverage[0].any() and near.coverage[1, 1] and not near.coverage[9, 9]
    # A second, nearer triangle over the left half wins the z-test there, loses nothing elsewhere.
    xy2 = np.vstack([xy, [[0.0, 0.0], [5.0, 0.0], [0.0, 10.0]]])
    faces = np.vstack([quad, [[4, 5, 6]]])
    depth = np.r_[np.full(4, 2.0), np.full(3, 1.0)]
    both = rasterize(xy2, depth, faces, 10, 10)
    assert both.triangle[2, 2] == 2 and both.triangle[8, 8] in (0, 1)
    np.testing.assert_allclose(both.barycentric[both.coverage].sum(axis=1), 1.0)
    assert mask_iou(near.coverage, near.coverage) == 1.0 and mask_iou(near.coverage, ~near.coverage) == 0.0


def test_project_matches_opencv_convention():
    K = np.array([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    uv, z = project(np.array([[0.0, 0.0, 2.0], [0.1, -0.2, 1.0]]), K, np.eye(3), np.zeros(3))
    np.testing.assert_allclose(uv, [[32, 24], [42, 4]])
    np.testing.assert_allclose(z, [2.0, 1.0])


def test_unwrap_recovers_a_known_texture_and_hides_the_occluded_part():
    """A textured plane seen head-on: unwrapping the rendered image gives the texture back where seen."""
    n = 9
    g = np.linspace(0.0, 1.0, n)
    uu, vv = np.meshgrid(g, g)
    uvs = np.stack([uu.ravel(), vv.ravel()], 1)
    vertices = np.stack([uu.ravel() * 0.2 - 0.1, vv.ravel() * 0.2 - 0.1, np.zeros(n * n)], 1)
    idx = np.arange(n * n).reshape(n, n)
    faces = np.concatenate([
        np.stack([idx[:-1, :-1].ravel(), idx[:-1, 1:].ravel(), idx[1:, 1:].ravel()], 1),
        np.stack([idx[:-1, :-1].ravel(), idx[1:, 1:].ravel(), idx[1:, :-1].ravel()], 1),
    ])  # fmt: skip
    size, width = 32, 64
    K = np.array([[300.0, 0, 32], [0, 300.0, 32], [0, 0, 1]])
    R = np.diag([1.0, -1.0, -1.0])  # camera on +Z looking at the plane, image up = +Y
    t = np.array([0.0, 0.0, 1.0])

    def texture_at(u, v):  # smooth colour ramp so bilinear resampling is nearly exact
        return np.stack([u, v, 0.5 + 0.0 * u], -1)

    # Render the plane: per pixel, the UV of the surface point hit (rasteriser barycentrics).
    xy, depth = project(vertices, K, R, t)
    screen = rasterize(xy, depth, faces, width, width)
    pix_uv = np.einsum("hwk,hwkc->hwc", screen.barycentric, uvs[faces[np.maximum(screen.triangle, 0)]])
    image = np.where(screen.coverage[..., None], texture_at(pix_uv[..., 0], pix_uv[..., 1]), 0.0)
    mask = screen.coverage.copy()
    mask[:, :32] = False  # pretend something occludes the image's left half (the plane's -X side)
    texels = uv_raster(uvs, faces, size)
    texture, weight = unwrap_view(image, mask, vertices, faces, texels, K, R, t)
    tu, tv = (np.arange(size) + 0.5) / size, 1.0 - (np.arange(size) + 0.5) / size
    expected = texture_at(*np.meshgrid(tu, tv))
    seen = weight > 0.99
    assert seen[:, size // 2 + 2 :].mean() > 0.8, "the right half of the UV square is seen"
    assert not seen[:, : size // 2 - 2].any(), "the occluded half is not"
    np.testing.assert_allclose(texture[seen][:, :2], expected[seen][:, :2], atol=2e-3)
