"""Registration losses: landmark reprojection (Eq. 6), masked L1 + Laplacian L1 (Eq. 7), flow (Eq. 8).

All take batched tensors and return one loss per frame ([B]) so callers can sum (optimisation: frames are
independent, so the sum's gradient is each frame's own) or report per-frame values.

Normalisation of Eq. 7 and Eq. 8 (the paper writes norms and gives λ_flow = 3.0, but not its units). Both
are *means* - over covered pixels and channels, over visible vertices - so that their balance, and hence
λ_flow, does not change with the working resolution, the face's size in the frame or the mesh's vertex count.
Units: the image residual in 8-bit intensity levels (`INTENSITY_LEVELS`), the flow residual in pixels of an
image whose longer side is `FLOW_REFERENCE_SIDE`. With sums in linear [0, 1] intensities and working pixels
(the first version) the flow term outweighed the image term ~60x on the sample clips and held the pose at
DIS's estimate between a CG render and the frame (bench/RESULTS.md, "step-3 weighting").
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

INTENSITY_LEVELS = 255.0  # Eq. 7 residual unit: one 8-bit level of linear intensity
FLOW_REFERENCE_SIDE = 256.0  # Eq. 8 residual unit: one pixel at this longer image side

def laplacian(image: torch.Tensor) -> torch.Tensor:
    """5-point image Laplacian Δ of `image` [B, H, W, C] (replicate border) -> [B, H, W, C].

    Sums of shifted views rather than a 3 x 3 convolution: a one-channel convolution's backward is
    oneDNN's slowest case on a CPU (80 ms for 8 frames at 128², 40 % of a step-2 iteration); these
    slices give the same values (to float rounding) in a sixth of the time (bench/RESULTS.md, issue 20).
    """
    rows = torch.cat([image[:, :1], image, image[:, -1:]], 1)
    x = torch.cat([rows[:, :, :1], rows, rows[:, :, -1:]], 2)
    return x[:, :-2, 1:-1] + x[:, 2:, 1:-1] + x[:, 1:-1, :-2] + x[:, 1:-1, 2:] - 4.0 * image


def landmark_loss(projected: torch.Tensor, detected: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 6: Σ_i ‖Π(r̃ M̃(ℓ_i) + t̃) − L_i‖² per frame.

    projected, detected: [B, 68, 2] pixels; weight: [B, 68] (0 for missing / low-confidence points).
    """
    sq = (projected - detected).pow(2).sum(-1)
    if weight is not None:
        sq = sq * weight
    return sq.sum(-1)


def second_difference(x: torch.Tensor, times: torch.Tensor | None = None) -> torch.Tensor:
    """Acceleration per frame² of a sequence x [N, ...] -> [N - 2, ...]: x_{f-1} − 2x_f + x_{f+1} for
    consecutive frames; at frame times `times` [N] (a strided or uneven selection) the divided difference
    2 / (h₁ + h₂) · ((x_{f+1} − x_f) / h₂ − (x_f − x_{f-1}) / h₁), so a parabola gives the same value at any
    spacing."""
    if times is None:
        return x[:-2] - 2 * x[1:-1] + x[2:]
    h = (times[1:] - times[:-1]).to(x)
    h1, h2 = h[:-1], h[1:]
    shape = (-1,) + (1,) * (x.dim() - 1)
    slope_before = (x[1:-1] - x[:-2]) / h1.view(shape)
    slope_after = (x[2:] - x[1:-1]) / h2.view(shape)
    return (slope_after - slope_before) * (2.0 / (h1 + h2)).view(shape)


def acceleration_penalty(rotation: torch.Tensor, translation_mm: torch.Tensor,
                         times: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Temporal prior on the head's motion: ‖R_{f-1} − 2R_f + R_{f+1}‖²_F and ‖t_{f-1} − 2t_f + t_{f+1}‖² per
    frame (0 at the two ends), rotation [N, 3, 3], translation [N, 3] in mm; for frames at `times` [N] (video
    frame numbers) the accelerations per frame² of `second_difference`.

    Second differences leave constant-velocity motion free and penalise frame-to-frame jitter. They are
    taken of the rotation matrices, not of axis-angle vectors, so they do not jump where axis-angle changes
    branch (|r| ≈ π, a head facing the camera). For small angles ‖ΔR‖²_F ≈ 2 ‖Δθ‖² in rad².
    """
    n = rotation.shape[0]
    zero = rotation.new_zeros(n)
    if n < 3:
        return zero, zero
    rot = second_difference(rotation, times).pow(2).sum(dim=(-1, -2))
    trans = second_difference(translation_mm, times).pow(2).sum(-1)
    return F.pad(rot, (1, 1)), F.pad(trans, (1, 1))


def pixel_loss(frame: torch.Tensor, render: torch.Tensor, mask: torch.Tensor, laplacian_weight: float) -> torch.Tensor:
    """Eq. 7: (‖r ⊙ w‖₁ + λ_Δ ‖Δr ⊙ w‖₁) / (3 Σ w) with r = I − Î in 8-bit levels, per frame.

    frame, render: [B, H, W, 3] linear RGB; mask: [B, H, W, 1] foreground weight w. The Laplacian is taken
    of the masked residual so the silhouette edge counts (a misplaced outline is an alignment error).
    """
    residual = (frame - render) * mask * INTENSITY_LEVELS
    count = 3.0 * mask.sum(dim=(1, 2, 3)).clamp_min(1.0)
    data = residual.abs().sum(dim=(1, 2, 3))
    if laplacian_weight == 0.0:
        return data / count
    lap = laplacian(residual) * mask
    return (data + laplacian_weight * lap.abs().sum(dim=(1, 2, 3))) / count


def flow_loss(projected: torch.Tensor, projected_init: torch.Tensor, flow: torch.Tensor,
              visible: torch.Tensor, image_side: float = FLOW_REFERENCE_SIDE) -> torch.Tensor:
    """Eq. 8: Σ_i ‖Π(r M(i) + t) − Π(r̃ M̃(i) + t̃) − d_i‖² / Σ_i 1 over visible vertices, per frame.

    projected: [B, V, 2] current projections; projected_init: [B, V, 2] at the step-1 parameters (constant);
    flow: [B, V, 2] DIS flow sampled at `projected_init`; visible: [B, V] 0/1 (or a confidence weight);
    all in pixels of an image whose longer side is `image_side` (rescaled to `FLOW_REFERENCE_SIDE`).
    """
    scale = FLOW_REFERENCE_SIDE / image_side
    sq = (projected - projected_init - flow).mul(scale).pow(2).sum(-1)
    return (sq * visible).sum(-1) / visible.sum(-1).clamp_min(1.0)
