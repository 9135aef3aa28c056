"""Superposition loss: G must relight a pattern as the sum of what it does for the pattern's parts.

Light transport is linear in the emitted power: for a fixed head, pose and view, the face lit by groups
A ∪ B is the face lit by A plus the face lit by B. G's relit texture (Eq. 2-3) should therefore satisfy

    T̂ ⊙ g(l) + b(l) = T̂ ⊙ (g(l_A) + g(l_B)) + b(l_A) + b(l_B),   l = l_A + l_B,

for *any* split of the code's lit groups — including splits into patterns that were never captured. The
paper states no such term (an experiment, `--experiment superposition=W`): its G is a free MLP of l,
trained on a capture long enough to cover the pattern space. On a short capture (the sample light stage:
100-200 patterns, each group lit in 7-15 of them) a free G learns the captured codes and extrapolates
poorly to new combinations (bench/RESULTS.md, "what makes G generalise"). The constraint needs no image:
it ties G's answers on the captured patterns to its answers on their parts, so the per-group responses
that the captured sums imply are what G has to learn. Pattern mixing (pattern_mix.py) is the same
linearity applied to the data — with exact image targets, but only for patterns captured in one pose.
Measured on the sample light stage (bench/RESULTS.md): it lifts G's known-code score on unseen patterns by
up to 2 dB, but every run without a guard drifted into a bias-dominated G that tracks worse in the wild,
so it is not shipped. When trying it on a new capture, pair it with the shading-ratio guard
(`--experiment shading_ratio=W`, shading_ratio.py), which kept the bias at 2-5 % where a bias penalty of 0.05
let it reach 89 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlatrack_engine.models.lighting import LightingModel, relight
from dlatrack_engine.train.data import LightStageData
from dlatrack_engine.train.experiments.hook import RENDER, WARMUP, LightingBatch
from dlatrack_engine.train.unwrap import UnwrappedFrames


def random_split(light_code: torch.Tensor, generator: torch.Generator | None = None) -> tuple[torch.Tensor, ...]:
    """(l_A, l_B) with l_A + l_B = l: each light group (all three RGB entries together) goes to A or B with
    equal chance. [B, groups x RGB] each."""
    groups = light_code.view(light_code.shape[0], -1, 3)
    to_a = (torch.rand((*groups.shape[:2], 1), generator=generator, device=light_code.device) < 0.5).to(groups)
    return (groups * to_a).flatten(1), (groups * (1.0 - to_a)).flatten(1)


def superposition_residual(
    lighting: LightingModel,
    light_code: torch.Tensor,
    head_view: torch.Tensor,
    texture: torch.Tensor,
    relit: torch.Tensor,
    weight: torch.Tensor | None = None,
    level: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Per-sample mean |T(l) − T(l_A) − T(l_B)| [B] for a random split of each code, where `relit` = T(l)
    is the caller's own relit texture [B,3,T,T] (already computed, so only the parts cost a pass of G).
    `weight` [B,1,T,T] (texel visibility) restricts the mean to texels that matter; None: every texel.
    `level` [B] (the relative render loss's per-sample target intensity) divides the result when given."""
    part_a, part_b = random_split(light_code, generator)
    gain, bias = lighting(
        torch.cat([part_a, part_b]), torch.cat([head_view, head_view]), torch.cat([texture, texture])
    )
    relit_a, relit_b = relight(torch.cat([texture, texture]), gain, bias).chunk(2)
    residual = (relit - relit_a - relit_b).abs()
    if weight is None:
        per_sample = residual.mean(dim=(1, 2, 3))
    else:
        per_sample = (weight * residual).sum(dim=(1, 2, 3)) / (3 * weight.sum(dim=(1, 2, 3))).clamp_min(1e-6)
    return per_sample if level is None else per_sample / level


@torch.no_grad()
def non_additivity(
    lighting: LightingModel,
    light_code: torch.Tensor,
    head_view: torch.Tensor,
    texture: torch.Tensor,
    generator: torch.Generator | None = None,
) -> float:
    """How far G is from additive on these inputs: mean |T(l) − T(l_A) − T(l_B)| / mean |T(l)| over the
    batch, one random split per sample (0 for a G linear in l)."""
    gain, bias = lighting(light_code, head_view, texture)
    relit = relight(texture, gain, bias)
    residual = superposition_residual(lighting, light_code, head_view, texture, relit, generator=generator)
    return float(residual.mean() / relit.abs().mean().clamp_min(1e-12))


@dataclass
class SuperpositionTerm:
    """`--experiment superposition=W`: the residual above on a random split of every sample's code, in the
    warm-up (over visible texels) and in Eq. 4-5 (over every texel), relative like the render loss."""

    weight: float
    name: str = "superposition"
    stages: tuple[str, ...] = (WARMUP, RENDER)

    def prepare(self, data: LightStageData, frames: list[int], unwrapped: UnwrappedFrames) -> None:
        """Nothing to prepare: the term needs only G and the batch."""

    def __call__(self, batch: LightingBatch) -> torch.Tensor:
        return superposition_residual(
            batch.lighting, batch.light_code, batch.head_view, batch.texture, batch.relit, batch.weight, batch.level
        )
