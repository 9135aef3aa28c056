"""Algorithm 1 (docs/method.md) in texture space: one light-stage frame's lighting, fitted on some cameras.

Registration (fit/step2.py) adapts l and φ on K video frames in image space. On the light stage the mesh
is tracked and the cameras are calibrated, so the same alternation can run against the frame's unwrapped
camera images, texel by texel. The evaluation (train/heldout_eval.py) uses it to score G on a lighting pattern
it never saw the way the method meets any new lighting: l fitted (step a), then φ adapted as well
(step b), on the fitting cameras only, and judged on cameras that took no part.

The key-frame poses p_k of step b stay fixed here: the light stage's tracked mesh is the geometry.
"""

from __future__ import annotations

import copy
from functools import partial

import torch

from dlatrack_engine.fit.optim import run_adam
from dlatrack_engine.fit.schedule import Step2Schedule
from dlatrack_engine.models.lighting import LightingModel, relight


class TextureTarget:
    """Unwrapped images of one frame and what G needs to relight it: texture T̂_v, h_v and texel weights."""

    def __init__(
        self, texture: torch.Tensor, head_view: torch.Tensor, target: torch.Tensor, weight: torch.Tensor
    ) -> None:
        self.texture, self.head_view = texture.detach(), head_view.detach()
        self.target, self.weight = target.detach(), weight.detach()

    def loss(self, lighting: LightingModel, code: torch.Tensor) -> torch.Tensor:
        """Weighted mean L1 between the relit texture (Eq. 2-3) and the unwrapped images."""
        gain, bias = lighting(code.expand(self.texture.shape[0], -1), self.head_view, self.texture)
        residual = (relight(self.texture, gain, bias) - self.target).abs()
        return (self.weight * residual).sum() / self.weight.sum().clamp_min(1e-6)


def fit_light_code(
    lighting: LightingModel, target: TextureTarget, iterations: int, lr: float = 1e-2, code: torch.Tensor | None = None
) -> torch.Tensor:
    """Step (a) of Algorithm 1: l (from 0 unless given) minimising `target.loss` with φ frozen."""
    trainable = [p for p in lighting.parameters() if p.requires_grad]
    lighting.requires_grad_(False)
    try:
        start = torch.zeros(1, lighting.cfg.code_size, device=target.texture.device) if code is None else code
        leaf = start.detach().clone().requires_grad_(True)
        if iterations > 0:
            run_adam([leaf], lambda: target.loss(lighting, leaf), iterations, lr)
        return leaf.detach()
    finally:
        for p in trainable:
            p.requires_grad_(True)


def adapt_in_texture_space(
    lighting: LightingModel, target: TextureTarget, schedule: Step2Schedule
) -> tuple[torch.Tensor, LightingModel]:
    """Algorithm 1 on one frame: l <- 0, φ <- a copy of the pre-trained G; `schedule.rounds` times fit l
    (`light_iterations` at `light_lr`), then φ (`model_iterations` at `model_lr`). -> (l, adapted G);
    `lighting` itself is left untouched."""
    adapted = copy.deepcopy(lighting)
    code = None
    for _ in range(schedule.rounds):
        code = fit_light_code(adapted, target, schedule.light_iterations, schedule.light_lr, code)
        if schedule.model_iterations > 0:
            adapted.requires_grad_(True)
            run_adam(
                list(adapted.parameters()),
                partial(target.loss, adapted, code),
                schedule.model_iterations,
                schedule.model_lr,
            )
    adapted.requires_grad_(False)
    if code is None:
        code = torch.zeros(1, lighting.cfg.code_size, device=target.texture.device)
    return code, adapted.eval()
