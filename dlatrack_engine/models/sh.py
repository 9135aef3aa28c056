"""The "Ours-SH" baseline (docs/method.md, "Evaluation"): second-order SH shading of the fully-lit texture.

27 coefficients = 9 basis functions (bands 0-2) x RGB, laid out RGB-major: channel c uses
sh_coeffs[:, 9c : 9c + 9]. The basis includes the Lambertian irradiance convolution constants
(Ramamoorthi & Hanrahan 2001), with the signs and constants used by Tewari et al. (MoFA, the paper's [43])
and Deng et al., so the gain is the irradiance for unit albedo:

    gain_c(n) = Σ_k sh_coeffs[c, k] · Y_k(n),     bias = 0,     relit = texture ⊙ gain   (Eq. 2 with SH)

Normals are per texel, in the frame in which the lighting is fixed (the camera/world frame for a video:
rotate head-frame normals by R(r) first). The paper regresses the 27 values with a network from the image;
here they are optimised directly per frame/video (the same role: the registration fits them like it fits l),
which is, if anything, generous to the baseline.
"""

from __future__ import annotations

import math

import torch
from torch import nn

NUM_SH_COEFFS = 27

_A0, _A1, _A2 = math.pi, 2.0 * math.pi / math.sqrt(3.0), 2.0 * math.pi / math.sqrt(8.0)
_C0 = 1.0 / math.sqrt(4.0 * math.pi)
_C1 = math.sqrt(3.0) / math.sqrt(4.0 * math.pi)
_C2 = 3.0 * math.sqrt(5.0) / math.sqrt(12.0 * math.pi)


def sh_basis(normals: torch.Tensor) -> torch.Tensor:
    """Irradiance-weighted SH basis for normals [..., 3] -> [..., 9] (normals need not be unit: they are
    normalised here, zero normals give the ambient term only)."""
    n = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-8)
    x, y, z = n.unbind(-1)
    return torch.stack(
        [
            torch.full_like(x, _A0 * _C0),
            -_A1 * _C1 * y,
            _A1 * _C1 * z,
            -_A1 * _C1 * x,
            _A2 * _C2 * x * y,
            -_A2 * _C2 * y * z,
            _A2 * _C2 * 0.5 / math.sqrt(3.0) * (3.0 * z * z - 1.0),
            -_A2 * _C2 * x * z,
            _A2 * _C2 * 0.5 * (x * x - y * y),
        ],
        dim=-1,
    )


def identity_sh_coeffs(batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """Coefficients giving gain = 1 everywhere (ambient only): the SH analogue of G's identity start."""
    coeffs = torch.zeros(batch, 3, 9, device=device)
    coeffs[:, :, 0] = 1.0 / (_A0 * _C0)
    return coeffs.reshape(batch, NUM_SH_COEFFS)


class SHLighting(nn.Module):
    """Same call shape as `LightingModel` so registration can swap them: -> (gain, bias = 0)."""

    def forward(
        self, sh_coeffs: torch.Tensor, normals_uv: torch.Tensor, texture: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """sh_coeffs [B,27], normals_uv [B,3,T,T], texture [B,3,T,T] -> gain [B,3,T,T], bias [B,3,T,T]."""
        batch = texture.shape[0]
        if tuple(sh_coeffs.shape) != (batch, NUM_SH_COEFFS):
            raise ValueError(f"SHLighting: sh_coeffs must be [{batch}, {NUM_SH_COEFFS}], got {list(sh_coeffs.shape)}")
        if normals_uv.shape != texture.shape:
            raise ValueError(
                f"SHLighting: normals_uv {list(normals_uv.shape)} must match texture {list(texture.shape)}"
            )
        basis = sh_basis(normals_uv.permute(0, 2, 3, 1))  # [B,T,T,9]
        gain = torch.einsum("bhwk,bck->bchw", basis, sh_coeffs.view(batch, 3, 9))
        return gain, torch.zeros_like(texture)
