"""A prior on step 2's adapted φ: it may relight the texture, not redraw its detail (a departure, docs/method.md).

Algorithm 1 fits φ and the key-frame poses p_k together, and φ is a whole network: where a key frame's head
sits a few millimetres off, φ can move the texture's edges (eyes, brows, mouth) by a texel through fine
structure in its gain and bias maps, and Eq. 7 then prefers the wrong pose to the right one (bench/RESULTS.md,
"registration against the ground truth": with the lighting adapted at step 1's poses, Eq. 7 is lower there
than at the truth). Half-round b of the first rounds therefore pays for the fine-scale part of what φ changes
in the maps:

    R(φ) = 255 · mean |Δ(pool₂(T̄ ⊙ (g(φ) − g(φ₀)) + b(φ) − b(φ₀)))|                                (Eq. 2's maps)

φ₀ is G as step 2 found it (the pre-trained weights, or the untrained ones of the ablation), evaluated at the
same l, h_v and T̂ without gradients. T̄ is the texture's mean per frame and channel, so a change of gain is
weighed in the levels it makes, and a smooth change (exposure, colour, shading) costs nothing: scaling by the
texture itself would charge an exposure change for every edge of the texture. pool₂ is a 2 x 2 average in UV
(a texel of a 128² texture is about half a pixel of the face at the working size, so the Laplacian sees
structures of one or two pixels); 255 puts R in the 8-bit levels of Eq. 7.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from dlatrack_engine.fit.losses import laplacian


class DetailPrior:
    """weight · R(φ) per frame, against a frozen copy of the network as it is at construction."""

    def __init__(self, network: torch.nn.Module, weight: float) -> None:
        self.start = copy.deepcopy(network).requires_grad_(False)
        self.weight = weight

    def __call__(self, code: torch.Tensor, head_view: torch.Tensor, texture: torch.Tensor,
                 gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        """[B] for the maps `gain`, `bias` [B, 3, T, T] that the adapted φ made for `texture` [B, 3, T, T],
        lit by `code` ([B, C], or [1, C] shared by the batch) at `head_view` [B, 6]."""
        with torch.no_grad():
            code = code.detach().expand(len(texture), -1)
            gain0, bias0 = self.start(code, head_view.detach(), texture.detach())
        level = texture.detach().mean(dim=(2, 3), keepdim=True)
        change = F.avg_pool2d(level * (gain - gain0) + (bias - bias0), 2)
        return self.weight * 255.0 * laplacian(change.permute(0, 2, 3, 1)).abs().mean(dim=(1, 2, 3))
