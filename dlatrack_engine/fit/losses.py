"""Registration losses: landmark reprojection (Eq. 6), masked L1 + Laplacian L1 (Eq. 7), flow (Eq. 8).

All take batched tensors and return one loss per frame ([B]) so callers can sum (optimisation: frames are
independent, so the sum's gradient is each frame's own) or report per-frame values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])


def laplacian(image: torch.Tensor) -> torch.Tensor:
    """5-point image Laplacian Δ of `image` [B, H, W, C] (replicate border) -> [B, H, W, C]."""
    b, h, w, c = image.shape
    x = image.permute(0, 3, 1, 2).reshape(b * c, 1, h, w)
    x = F.pad(x, (1, 1, 1, 1), mode="replicate")
    kernel = _LAPLACIAN.to(image.device, image.dtype)[None, None]
    return F.conv2d(x, kernel).reshape(b, c, h, w).permute(0, 2, 3, 1)


def landmark_loss(projected: torch.Tensor, detected: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 6: Σ_i ‖Π(r̃ M̃(ℓ_i) + t̃) − L_i‖² per frame.

    projected, detected: [B, 68, 2] pixels; weight: [B, 68] (0 for missing / low-confidence points).
    """
    sq = (projected - detected).pow(2).sum(-1)
    if weight is not None:
        sq = sq * weight
    return sq.sum(-1)


def pixel_loss(frame: torch.Tensor, render: torch.Tensor, mask: torch.Tensor, laplacian_weight: float) -> torch.Tensor:
    """Eq. 7: ‖r ⊙ w‖₁ + λ_Δ ‖Δr ⊙ w‖₁ with r = I − Î, per frame.

    frame, render: [B, H, W, 3] linear RGB; mask: [B, H, W, 1] foreground weight w. The Laplacian is taken
    of the masked residual so the silhouette edge counts (a misplaced outline is an alignment error).
    """
    residual = (frame - render) * mask
    data = residual.abs().sum(dim=(1, 2, 3))
    if laplacian_weight == 0.0:
        return data
    lap = laplacian(residual) * mask
    return data + laplacian_weight * lap.abs().sum(dim=(1, 2, 3))


def flow_loss(projected: torch.Tensor, projected_init: torch.Tensor, flow: torch.Tensor,
              visible: torch.Tensor) -> torch.Tensor:
    """Eq. 8: Σ_i ‖Π(r M(i) + t) − Π(r̃ M̃(i) + t̃) − d_i‖² over visible vertices, per frame.

    projected: [B, V, 2] current projections; projected_init: [B, V, 2] at the step-1 parameters (constant);
    flow: [B, V, 2] DIS flow sampled at `projected_init`; visible: [B, V] 0/1 (or a confidence weight).
    """
    sq = (projected - projected_init - flow).pow(2).sum(-1)
    return (sq * visible).sum(-1)
