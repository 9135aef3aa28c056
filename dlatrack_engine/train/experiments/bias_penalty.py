"""An L1 penalty on G's bias map (`--experiment bias_penalty=W`; not in the paper, not shipped).

Eq. 2 does not fix how G splits a relit face between gain and bias: G also sees T̂, so the bias map alone can
reproduce any relit face. The first sample package (a plain G) collapsed into g ≈ 0 with b carrying the face;
the penalty adds W · mean |b| (divided by the relative render loss's target level) in the warm-up and in
Eq. 4-5. The energy-normalised G removed the cause and keeps a healthy split without it; where the split
did collapse (superposition on 200 patterns, bench/RESULTS.md) a penalty of 0.05 did not hold it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlatrack_engine.train.data import LightStageData
from dlatrack_engine.train.experiments.hook import RENDER, WARMUP, LightingBatch
from dlatrack_engine.train.lighting_trainer import bias_magnitude
from dlatrack_engine.train.unwrap import UnwrappedFrames


@dataclass
class BiasPenaltyTerm:
    """W · mean |b| per sample, relative to the sample's target level when the render loss is relative."""

    weight: float
    name: str = "bias_penalty"
    stages: tuple[str, ...] = (WARMUP, RENDER)

    def prepare(self, data: LightStageData, frames: list[int], unwrapped: UnwrappedFrames) -> None:
        """Nothing to prepare: the term needs only the batch's bias map."""

    def __call__(self, batch: LightingBatch) -> torch.Tensor:
        return bias_magnitude(batch.bias, batch.level)
