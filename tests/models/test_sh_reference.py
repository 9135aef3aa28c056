"""The Ours-SH baseline's basis against scipy's spherical harmonics: the real SH of bands 0-2 with the
Condon-Shortley phase (the signs of Tewari et al. / Deng et al.), times the per-band constants
(π, 2π/√3, 2π/√8 as in Deng et al.'s code). Written against the mutants mutmut left alive in models/sh.py
(bench/RESULTS.md, "Mutation score")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import sph_harm_y

from dlatrack_engine.models.sh import NUM_SH_COEFFS, SHLighting, identity_sh_coeffs, sh_basis

# Order of the 9 basis functions: (l, m) = (0,0), (1,-1), (1,0), (1,1), (2,-2), (2,-1), (2,0), (2,1), (2,2).
ORDER = [(0, 0), (1, -1), (1, 0), (1, 1), (2, -2), (2, -1), (2, 0), (2, 1), (2, 2)]
BAND_CONSTANT = {0: math.pi, 1: 2.0 * math.pi / math.sqrt(3.0), 2: 2.0 * math.pi / math.sqrt(8.0)}


def _real_sh(normals: np.ndarray) -> np.ndarray:
    """Real SH from scipy's complex ones (which include the Condon-Shortley phase): √2·Re Y_l^m for m > 0,
    √2·Im Y_l^|m| for m < 0, Y_l^0 for m = 0."""
    theta = np.arccos(np.clip(normals[:, 2], -1.0, 1.0))  # polar angle from +z
    phi = np.arctan2(normals[:, 1], normals[:, 0])
    out = []
    for degree, order in ORDER:
        y = sph_harm_y(degree, abs(order), theta, phi)
        if order > 0:
            out.append(math.sqrt(2.0) * y.real)
        elif order < 0:
            out.append(math.sqrt(2.0) * y.imag)
        else:
            out.append(y.real)
    return np.stack(out, axis=-1)


def _unit_normals(count: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(count, 3, generator=g, dtype=torch.float64), dim=1)


def test_basis_is_the_irradiance_weighted_real_sh():
    normals = _unit_normals(500, 0)
    reference = _real_sh(normals.numpy()) * np.array([BAND_CONSTANT[degree] for degree, _ in ORDER])
    np.testing.assert_allclose(sh_basis(normals).numpy(), reference, atol=1e-12)


def test_basis_gram_matrix_is_diagonal_with_the_band_constants():
    """Orthonormality of the real SH over the sphere: E[Y_i Y_j] = δ_ij / 4π, so the weighted basis has
    E[B_i B_j] = A_l² δ_ij / 4π (Monte-Carlo over 200k uniform directions)."""
    normals = _unit_normals(200_000, 2)
    basis = sh_basis(normals)
    gram = (basis.T @ basis / normals.shape[0]).numpy()
    expected = np.diag([BAND_CONSTANT[degree] ** 2 / (4.0 * math.pi) for degree, _ in ORDER])
    np.testing.assert_allclose(gram, expected, atol=0.02 * expected.max())


@pytest.mark.parametrize("scale", [0.1, 0.5, 3.0])
def test_basis_ignores_the_normals_length(scale):
    normals = _unit_normals(50, 1)
    torch.testing.assert_close(sh_basis(scale * normals), sh_basis(normals))
    zero = sh_basis(torch.zeros(1, 3, dtype=torch.float64))  # a zero normal: the ambient term only
    assert float(zero[0, 0]) == pytest.approx(0.5 * math.sqrt(math.pi))
    assert float(zero[0, 1:6].abs().max()) == 0.0


def test_identity_coefficients_and_shape_errors():
    coeffs = identity_sh_coeffs(2, device="cpu")
    assert coeffs.shape == (2, NUM_SH_COEFFS) and coeffs.dtype == torch.float32
    gain, _ = SHLighting()(coeffs, torch.randn(2, 3, 4, 4), torch.rand(2, 3, 4, 4))
    torch.testing.assert_close(gain, torch.ones(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"^SHLighting: sh_coeffs must be \[2, 27\], got \[2, 9\]$"):
        SHLighting()(torch.zeros(2, 9), torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4))
    with pytest.raises(
        ValueError, match=r"^SHLighting: normals_uv \[2, 3, 4, 5\] must match texture \[2, 3, 4, 4\]$"
    ):
        SHLighting()(torch.zeros(2, 27), torch.zeros(2, 3, 4, 5), torch.zeros(2, 3, 4, 4))
