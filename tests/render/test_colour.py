"""Exact sRGB transfer functions (dlatrack_engine.colour)."""

from __future__ import annotations

import numpy as np
import torch

from dlatrack_engine.colour import linear_to_srgb, linear_to_srgb8, srgb8_to_linear, srgb_to_linear


def test_known_values() -> None:
    x = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.214041140482232, 1.0], dtype=torch.float64)
    torch.testing.assert_close(srgb_to_linear(x), expected)
    torch.testing.assert_close(linear_to_srgb(expected), x)
    # The linear segment below the threshold.
    assert abs(float(srgb_to_linear(torch.tensor(0.04, dtype=torch.float64))) - 0.04 / 12.92) < 1e-15


def test_round_trip_and_continuity_torch_numpy_agree() -> None:
    x = np.linspace(-0.1, 1.2, 1001)
    back = srgb_to_linear(linear_to_srgb(x))
    np.testing.assert_allclose(back, x, atol=1e-12)
    np.testing.assert_allclose(linear_to_srgb(torch.from_numpy(x)).numpy(), linear_to_srgb(x), atol=1e-12)
    # Both pieces meet at the thresholds (to the rounding of the standard's constants).
    for f, t in ((srgb_to_linear, 0.04045), (linear_to_srgb, 0.0031308)):
        assert abs(f(np.array(t + 1e-9)) - f(np.array(t - 1e-9))) < 1e-6


def test_gradients_are_finite_at_zero() -> None:
    x = torch.tensor([0.0, 1e-6, 0.5], requires_grad=True)
    linear_to_srgb(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_eight_bit_round_trip_is_exact() -> None:
    codes = np.arange(256, dtype=np.uint8)
    assert np.array_equal(linear_to_srgb8(srgb8_to_linear(codes)), codes)
    assert srgb8_to_linear(codes).dtype == np.float32
