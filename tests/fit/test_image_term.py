"""Eq. 7 as steps 2 and 3 evaluate it: the render composited over the frame, compared on its coverage's
interior, so the frame's pixels around the face outline do not pull the head (the outline of a face mesh
that ends inside the head is not an image edge)."""

from __future__ import annotations

import torch
from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics, render_clip, truth_lighting

from dlatrack_engine.fit.image_term import image_term, interior_weight
from dlatrack_engine.fit.losses import pixel_loss
from dlatrack_engine.fit.scene import FaceScene


def test_interior_weight_is_the_coverage_eroded_by_one_pixel():
    coverage = torch.zeros(1, 7, 7, 1)
    coverage[0, 1:6, 1:6] = 1.0
    coverage[0, 1, 3] = 0.5  # a fractional (antialiased) pixel on the outline
    weight = interior_weight(coverage)
    expected = torch.zeros(7, 7)
    expected[2:5, 2:5] = 1.0
    expected[2, 2:5] = 0.5  # next to the fractional pixel
    assert torch.equal(weight[0, ..., 0], expected)


def test_frame_pixels_outside_the_face_do_not_change_the_loss(avatar):
    """Repaint the frame outside the interior weight (outside the face and on its antialiased outline):
    Eq. 7 as shipped does not move, while the render-over-black version with w = coverage (the first one)
    does - it compared the frame with a render half blended with black on the outline, an edge of the
    residual whose height is the frame's intensity there."""
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    truth = gt_params(3)
    frames, _ = render_clip(avatar, truth)
    lighting = truth_lighting(avatar)
    with torch.no_grad():
        shifted = truth.detach()
        shifted.t[:, 2] += 0.004  # 4 mm off along the viewing ray: a non-zero residual inside
        loss, out = image_term(scene, frames, shifted, lighting, 0.25)
        outside = (interior_weight(out.mask) == 0).float()
        noise = torch.rand(frames.shape, generator=torch.Generator().manual_seed(3))
        repainted = frames * (1 - outside) + noise * outside
        loss_repainted, _ = image_term(scene, repainted, shifted, lighting, 0.25)
        over_black = scene.render(shifted, lighting)
        old = pixel_loss(frames, over_black.image, over_black.mask, 0.25)
        old_repainted = pixel_loss(repainted, over_black.image, over_black.mask, 0.25)
    assert float(loss.min()) > 1.0
    assert torch.allclose(loss, loss_repainted, rtol=1e-5)
    has_outline = ((out.mask > 0) & (out.mask < 1)).flatten(1).any(1)  # the dome fills frame 0
    assert int(has_outline.sum()) >= 2
    assert bool(((old - old_repainted).abs()[has_outline] > 0.05 * old[has_outline]).all())


def test_truth_is_the_minimum_along_the_viewing_ray(avatar):
    """With the true lighting, moving the head along its viewing ray by ±3 mm only raises Eq. 7."""
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    truth = gt_params(3)
    frames, _ = render_clip(avatar, truth)
    lighting = truth_lighting(avatar)
    ray = truth.t / truth.t.norm(dim=-1, keepdim=True)
    with torch.no_grad():
        at_truth, _ = image_term(scene, frames, truth, lighting, 0.25)
        for offset in (-0.003, 0.003):
            moved = truth.detach()
            moved.t += offset * ray
            loss, _ = image_term(scene, frames, moved, lighting, 0.25)
            assert bool((loss > at_truth + 0.5).all()), (offset, loss, at_truth)
