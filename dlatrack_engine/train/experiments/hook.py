"""The one hook through which an experiment reaches G's training: an extra, weighted loss term.

The texture-space warm-up and the Eq. 4-5 stage both describe each mini-batch as a `LightingBatch` (G's
inputs and outputs and the target) and add `weight · term(batch).mean()` for every `LossTerm` that applies
to the stage; the history records each term under its name. The shipped training passes no terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import torch

from dlatrack_engine.models.lighting import LightingModel
from dlatrack_engine.train.data import LightStageData
from dlatrack_engine.train.unwrap import UnwrappedFrames

WARMUP, RENDER = "warmup", "render"  # the two stages of G's training


@dataclass
class LightingBatch:
    """One mini-batch of G's training. Texture-space tensors are [B,3,T,T]; in the render stage `target`
    is the image [B,H,W,3] and `weight` is None (every texel counts)."""

    stage: str  # WARMUP or RENDER
    lighting: LightingModel  # G, for terms that query it on other codes
    frames: torch.Tensor  # [B] dataset frame indices
    cams: torch.Tensor  # [B] camera indices
    light_code: torch.Tensor  # l [B,150] (after colour augmentation and pattern mixing)
    head_view: torch.Tensor  # h_v [B,6]
    texture: torch.Tensor  # T̂ [B,3,T,T]
    gain: torch.Tensor  # g
    bias: torch.Tensor  # b
    relit: torch.Tensor  # T = T̂ ⊙ g + b
    target: torch.Tensor  # unwrapped camera texture (warm-up) or image (render stage)
    weight: torch.Tensor | None  # [B,1,T,T] texel visibility (warm-up) or None
    level: torch.Tensor | None  # [B] the relative render loss's per-sample target intensity, or None


class LossTerm(Protocol):
    """An experiment's extra loss: `weight` times the batch mean of `__call__`'s per-sample values [B]."""

    name: str
    weight: float
    stages: tuple[str, ...]  # the stages it applies to (WARMUP, RENDER)

    def prepare(self, data: LightStageData, frames: list[int], unwrapped: UnwrappedFrames) -> None:
        """Called once before the warm-up with its training frames and their unwraps."""

    def __call__(self, batch: LightingBatch) -> torch.Tensor: ...


def add_terms(terms: dict[str, torch.Tensor], extra: Sequence[LossTerm], batch: LightingBatch) -> None:
    """Add each applicable term's batch mean to `terms` under its name and its weighted value to "total"."""
    for term in extra:
        if batch.stage in term.stages:
            terms[term.name] = term(batch).mean()
            terms["total"] = terms["total"] + term.weight * terms[term.name]
