"""metrics/image.py at its edges, written against the mutants mutmut left alive (bench/RESULTS.md, "Mutation
score"): out-of-range linear values, malformed inputs and their messages, the PSNR cap, SSIM's K1 on dark
images (scikit-image as the reference) and the landmark hull's pixel convention."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.metrics import structural_similarity

from dlatrack_engine.colour import srgb8_to_linear
from dlatrack_engine.metrics import image

LUMA = np.array([0.299, 0.587, 0.114])


def _full(h: int = 8, w: int = 8) -> np.ndarray:
    return np.ones((h, w), np.float32)


def test_linear_values_outside_0_1_are_clipped_before_scoring():
    """A render that overshoots (1.5) or undershoots (−0.2) scores as white / black: what a display shows."""
    white, black = np.ones((8, 8, 3)), np.zeros((8, 8, 3))
    assert image.l2_error(np.full((8, 8, 3), 1.5), white, _full()) == 0.0
    assert image.l2_error(np.full((8, 8, 3), -0.2), black, _full()) == 0.0
    assert image.l2_error(np.full((8, 8, 3), 1.5), black, _full()) == pytest.approx(255.0**2)


def test_malformed_inputs_are_refused_with_the_reason():
    rgba = np.zeros((8, 8, 4))
    with pytest.raises(ValueError, match=r"must both be \[H, W, 3\]"):
        image.l2_error(rgba, rgba, _full())
    with pytest.raises(ValueError, match=r"mask .* does not match image"):
        image.l2_error(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), _full(4, 8))
    with pytest.raises(ValueError, match=r"^image metrics: the face-region mask is empty$"):
        image.l2_error(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)), np.full((8, 8), 0.5))  # 0.5 is outside


def test_psnr_is_capped_only_for_identical_images():
    frame = np.full((8, 8, 3), 0.5)
    assert image.psnr(frame, frame, _full()) == 100.0
    render = frame.copy()
    render[0, 0, 0] = srgb8_to_linear(np.array([[[189, 0, 0]]], np.uint8))[0, 0, 0]  # one level off in one value
    mse = image.l2_error(render, frame, _full())
    assert 0.0 < mse < 1.0  # below 1 level², where a cap at MSE <= 1 would wrongly report 100 dB
    assert image.psnr(render, frame, _full()) == pytest.approx(10 * math.log10(255.0**2 / mse))


def test_ssim_constants_on_dark_images_match_scikit_image():
    """On dark luma (a few levels) C1 = (K1 · 255)² dominates the luminance term: a wrong C1 moves the score."""
    rng = np.random.default_rng(3)
    a8 = rng.integers(0, 12, (24, 24, 3)).astype(np.uint8)
    b8 = np.clip(a8.astype(int) + rng.integers(-3, 4, a8.shape), 0, 255).astype(np.uint8)
    ours = image.ssim(srgb8_to_linear(a8), srgb8_to_linear(b8), _full(24, 24))
    _, ssim_map = structural_similarity(a8.astype(np.float64) @ LUMA, b8.astype(np.float64) @ LUMA,
                                        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=255.0, K1=0.01, K2=0.03, full=True)
    assert 0.2 < float(ssim_map.mean()) < 0.99
    assert ours == pytest.approx(float(ssim_map.mean()), abs=1e-6)


def test_landmark_hull_covers_the_pixels_inside_the_landmarks():
    """Pixel i spans [i, i + 1) (centre i + 0.5): a square of landmarks from 2.2 to 6.2 px fills pixels 2-6,
    as float32 0/1."""
    points = np.array([[2.2, 2.2], [6.2, 2.2], [6.2, 6.2], [2.2, 6.2]] * 17, np.float64)
    mask = image.landmark_hull_mask(points, 10, 10)
    expected = np.zeros((10, 10), np.float32)
    expected[2:7, 2:7] = 1.0
    assert mask.dtype == np.float32
    np.testing.assert_array_equal(mask, expected)
