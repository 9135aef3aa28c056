"""Eq. 7 on a render, as steps 2 and 3 both evaluate it: the avatar composited over the frame, compared on
the interior of its coverage.

    L_pix(p) = (‖r ⊙ w‖₁ + λ_Δ ‖Δ(r ⊙ w)‖₁) / (3 Σ w),   r = I − (c Î(p) + (1 − c) I),   w = erode(c)

c is the render's antialiased coverage. Compositing over the frame makes the residual exactly 0 outside the
face and continuous across its outline, and the weight w leaves out the one-pixel band where c is
fractional. The first version compared the render over black with w = c: the Laplacian then saw an
artificial step at the outline whose height is the *frame's* intensity there, which pulled the head along
the viewing ray (with the lighting adapted at the truth, step 3 drifted 1.3 mm in depth from a perfect
start, and the joint adaptation of lighting and poses drifted without bound; bench/RESULTS.md,
"registration against the ground truth"). The outline is not compared at all: the face mesh ends inside the
head, so its outline is not an image edge.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from dlatrack_engine.fit.losses import pixel_loss
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene, RenderOut
from dlatrack_engine.fit.video_lighting import HeldMaps, VideoLighting


def interior_weight(coverage: torch.Tensor) -> torch.Tensor:
    """w: coverage [B, H, W, 1] eroded by one pixel (3 x 3 minimum; outside the image counts as covered),
    detached: a weight, not a variable. Two 3-tap minima of shifted views, ~40x faster on a CPU than
    max_pool2d, which gave the same values."""
    c = F.pad(coverage.detach()[..., 0], (1, 1, 1, 1), value=1.0)  # coverage <= 1: the pad never wins
    rows = torch.minimum(torch.minimum(c[:, :, :-2], c[:, :, 1:-1]), c[:, :, 2:])
    return torch.minimum(torch.minimum(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])[..., None]


def composite_loss(frames: torch.Tensor, image: torch.Tensor, coverage: torch.Tensor, laplacian_weight: float,
                   matte: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 7 per frame [B] for a render `image` [B, H, W, 3] already composited over `frames`, with its
    coverage [B, H, W, 1]; `matte` [B, H, W, 1] optionally restricts the comparison further."""
    weight = interior_weight(coverage)
    if matte is not None:
        weight = weight * matte
    return pixel_loss(frames, image, weight, laplacian_weight)


def image_term(scene: FaceScene, frames: torch.Tensor, params: FrameParams,
               lighting: VideoLighting | HeldMaps | None,
               laplacian_weight: float, matte: torch.Tensor | None = None) -> tuple[torch.Tensor, RenderOut]:
    """Eq. 7 per frame [B] for frames [B, H, W, 3] at parameters p, and the render it compared."""
    out = scene.render(params, lighting, background=frames)
    return composite_loss(frames, out.image, out.mask, laplacian_weight, matte), out
