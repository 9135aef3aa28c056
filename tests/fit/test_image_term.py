"""Eq. 7 as steps 2 and 3 evaluate it: the render composited over the frame, compared on its coverage's
interior, so the frame's pixels around the face outline do not pull the head (the outline of a face mesh
that ends inside the head is not an image edge)."""

from __future__ import annotations

import torch
from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics, render_clip, truth_lighting

from dlatrack_engine.fit.image_term import composite_loss, image_term, interior_weight
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


def test_the_image_border_counts_as_covered_and_the_weight_is_detached():
    coverage = torch.ones(2, 4, 5, 1, requires_grad=True)
    weight = interior_weight(coverage)
    assert torch.equal(weight, torch.ones(2, 4, 5, 1)) and not weight.requires_grad
    hole = torch.ones(1, 4, 5, 1)
    hole[0, 0, 4] = 0.25  # a corner pixel: its 2 x 2 neighbourhood inside the image takes its value
    expected = torch.ones(4, 5)
    expected[0:2, 3:5] = 0.25
    assert torch.equal(interior_weight(hole)[0, ..., 0], expected)


def test_the_composite_loss_is_eq7_on_the_eroded_coverage_times_the_matte():
    g = torch.Generator().manual_seed(0)
    frames, image = torch.rand(2, 6, 7, 3, generator=g), torch.rand(2, 6, 7, 3, generator=g)
    coverage = torch.rand(2, 6, 7, 1, generator=g)
    matte = (torch.rand(2, 6, 7, 1, generator=g) > 0.5).float()
    weight = interior_weight(coverage)
    assert torch.equal(composite_loss(frames, image, coverage, 0.7), pixel_loss(frames, image, weight, 0.7))
    assert torch.equal(composite_loss(frames, image, coverage, 0.7, matte),
                       pixel_loss(frames, image, weight * matte, 0.7))


def test_image_term_composites_the_render_over_the_frames(avatar):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    truth = gt_params(2)
    frames = torch.rand(2, HEIGHT, WIDTH, 3, generator=torch.Generator().manual_seed(1))
    matte = torch.zeros(2, HEIGHT, WIDTH, 1)
    matte[:, :, : WIDTH // 2] = 1.0
    with torch.no_grad():
        loss, out = image_term(scene, frames, truth, None, 0.3)
        matted, _ = image_term(scene, frames, truth, None, 0.3, matte)
        expected = scene.render(truth, None, background=frames)
    assert torch.equal(out.image, expected.image)
    assert torch.equal(loss, composite_loss(frames, expected.image, expected.mask, 0.3))
    assert torch.equal(matted, composite_loss(frames, expected.image, expected.mask, 0.3, matte))
    assert not torch.allclose(matted, loss)
