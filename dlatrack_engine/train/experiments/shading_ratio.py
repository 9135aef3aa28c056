"""Shading-ratio supervision of G's gain (`--experiment shading_ratio=W`; not in the paper, not shipped).

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
Measured (bench/RESULTS.md): the healthiest gain/bias split of any G (bias 2 % under patterns) at a small
cost on the light stage, level with the shipped G in registration; not shipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dlatrack_engine.train.data import LightStageData, same_pose_full_frames
from dlatrack_engine.train.experiments.hook import WARMUP, LightingBatch
from dlatrack_engine.train.unwrap import UnwrappedFrames

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


@dataclass
class ShadingRatioTerm:
    """`--experiment shading_ratio=W`: in the warm-up, G's gain against the shading ratio of each sample whose
    pose has a fully-lit training frame (texture space; the render stage has no unwrapped reference)."""

    weight: float
    name: str = "shading_ratio"
    stages: tuple[str, ...] = (WARMUP,)
    unwrapped: UnwrappedFrames | None = field(default=None, init=False)
    twin_row: torch.Tensor | None = field(default=None, init=False)  # [N] per dataset frame, -1: no twin

    def prepare(self, data: LightStageData, frames: list[int], unwrapped: UnwrappedFrames) -> None:
        """Find each training frame's same-pose fully-lit frame among the warm-up's unwraps."""
        self.unwrapped = unwrapped
        self.twin_row = torch.full((data.num_frames,), -1, dtype=torch.long)
        self.twin_row[torch.tensor(frames, dtype=torch.long)] = fully_lit_rows(data, frames, unwrapped)

    def __call__(self, batch: LightingBatch) -> torch.Tensor:
        if self.unwrapped is None or self.twin_row is None or batch.weight is None:
            raise RuntimeError("ShadingRatioTerm: prepare() was not called, or the batch is not in texture space")
        twin = self.twin_row[batch.frames.cpu()]
        has_twin = (twin >= 0).float()[:, None, None, None]
        row, cams = twin.clamp_min(0), batch.cams.cpu()
        device = batch.gain.device
        fully_lit = self.unwrapped.textures[row, cams].float().to(device)
        fully_lit_weight = (self.unwrapped.weights[row, cams].float() * has_twin).to(device)
        return shading_ratio_residual(batch.gain, batch.target, batch.weight, fully_lit, fully_lit_weight)
