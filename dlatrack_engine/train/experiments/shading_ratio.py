"""Shading-ratio supervision of G's gain (opt-in `lambda_shading_ratio`; not in the paper).

Eq. 2 alone does not fix how G splits a relit face between gain and bias: G sees T̂, so the bias alone can
reproduce any relit texture, and on the sample light stage every unguarded run drifted towards a bias that
carries the face (bench/RESULTS.md). A light stage's fully-lit frames fix the split. Where a pose was
captured both fully lit and under a pattern, the pattern image divided by the fully-lit one is the true
shading ratio of each texel, and that ratio is exactly the gain a perfect G returns with b = 0: on the
sample light stage, relighting the DAM render by it scores 3.8 dB above SH's optimum on held-out views
(the evaluation's "oracle"). The term is the relative L1 between G's gain and that ratio, in texture space,
over texels that both unwraps see; samples whose pose has no fully-lit training frame contribute nothing.
The sample light stage renders one fully-lit frame per pose; a real capture, whose fully-lit frames are
interleaved in time, matches only where the pose is bit-identical (`data.same_pose_full_frames`).
"""

from __future__ import annotations

import torch

from dlatrack_engine.train.dam_trainer import UnwrappedFrames
from dlatrack_engine.train.data import LightStageData, same_pose_full_frames

# Fully-lit texel values at or below this (linear RGB) are too dark for a ratio and are left out.
RATIO_FLOOR = 1e-3


def fully_lit_rows(data: LightStageData, frames: list[int], unwrapped: UnwrappedFrames) -> torch.Tensor:
    """For each of `frames`, the row in `unwrapped` of its same-pose fully-lit frame, or -1 where that frame
    does not exist or is not among the unwrapped (training) frames. [len(frames)] int64."""
    twins = same_pose_full_frames(data, frames)
    rows = [unwrapped.row(twins[f]) if twins.get(f) in unwrapped.frames else -1 for f in frames]
    return torch.tensor(rows, dtype=torch.long)


def shading_ratio_residual(
    gain: torch.Tensor,
    target: torch.Tensor,
    weight: torch.Tensor,
    fully_lit: torch.Tensor,
    fully_lit_weight: torch.Tensor,
) -> torch.Tensor:
    """Per-sample [B] relative L1 between G's gain [B,3,T,T] and the shading ratio target / fully_lit, over
    texels seen in both unwraps (weights [B,1,T,T]) and bright enough fully lit. 0 for a sample with no
    such texel."""
    usable = weight * fully_lit_weight * (fully_lit.amin(dim=1, keepdim=True) > RATIO_FLOOR)
    ratio = target / fully_lit.clamp_min(RATIO_FLOOR)
    norm = 3 * usable.sum(dim=(1, 2, 3))
    seen = norm > 0
    norm = norm.clamp_min(1e-6)
    level = (usable * ratio).sum(dim=(1, 2, 3)) / norm + 1e-3
    residual = (usable * (gain - ratio).abs()).sum(dim=(1, 2, 3)) / norm / level
    return torch.where(seen, residual, torch.zeros_like(residual))
