"""Shading-ratio supervision (train/experiments/shading_ratio.py): G's gain vs pattern / same-pose fully-lit."""

from __future__ import annotations

import numpy as np
import torch
from shared_pose_toy import shared_pose_toy
from toy_lightstage import toy_lightstage

from dlatrack_engine.models.dam import DAMConfig
from dlatrack_engine.models.lighting import LightingConfig, LightingModel
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.dam_trainer import DAMTrainConfig, train_dam
from dlatrack_engine.train.data import make_split
from dlatrack_engine.train.experiments.shading_ratio import (
    RATIO_FLOOR,
    ShadingRatioTerm,
    fully_lit_rows,
    shading_ratio_residual,
)
from dlatrack_engine.train.lighting_trainer import LightingTrainConfig, initial_codes
from dlatrack_engine.train.texture_warmup import texture_warmup

CPU = torch.device("cpu")
SMALL_G = dict(
    input_texture_size=16, mlp_width=32, light_channels=(32, 32, 16, 16, 16), texture_channels=(8, 16, 16, 16),
    branch_channels=16,
)  # fmt: skip


def _maps(seed: int = 0, batch: int = 2, size: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    fully_lit = torch.tensor(rng.uniform(0.1, 1.0, (batch, 3, size, size)), dtype=torch.float32)
    ratio = torch.tensor(rng.uniform(0.0, 0.2, (batch, 3, size, size)), dtype=torch.float32)
    weight = torch.ones(batch, 1, size, size)
    return fully_lit, fully_lit * ratio, weight


def test_the_true_ratio_as_gain_scores_zero_and_a_flat_gain_does_not():
    fully_lit, target, weight = _maps()
    ratio = target / fully_lit
    assert torch.allclose(shading_ratio_residual(ratio, target, weight, fully_lit, weight), torch.zeros(2), atol=1e-6)
    flat = torch.full_like(ratio, float(ratio.mean()))
    residual = shading_ratio_residual(flat, target, weight, fully_lit, weight)
    expected = (flat - ratio).abs().mean(dim=(1, 2, 3)) / (ratio.mean(dim=(1, 2, 3)) + 1e-3)
    torch.testing.assert_close(residual, expected)


def test_only_texels_seen_in_both_unwraps_and_lit_enough_count():
    fully_lit, target, weight = _maps(1)
    ratio = target / fully_lit
    gain = ratio.clone()
    gain[:, :, :4] += 5.0  # wrong on the top half...
    hidden = weight.clone()
    hidden[:, :, :4] = 0.0  # ...which the fully-lit unwrap does not see
    assert torch.allclose(shading_ratio_residual(gain, target, weight, fully_lit, hidden), torch.zeros(2), atol=1e-6)
    dark = fully_lit.clone()
    dark[:, 1, :4] = RATIO_FLOOR / 2  # or which is black when fully lit
    assert torch.allclose(shading_ratio_residual(gain, target, weight, dark, weight), torch.zeros(2), atol=1e-6)
    no_twin = torch.zeros_like(weight)
    assert torch.equal(shading_ratio_residual(gain, target, weight, fully_lit, no_twin), torch.zeros(2))


def test_its_gradient_matches_finite_differences():
    fully_lit, target, weight = _maps(2, batch=1, size=3)
    gain = (target / fully_lit + 0.05 * torch.randn(1, 3, 3, 3, generator=torch.Generator().manual_seed(0)))
    gain = gain.double().requires_grad_(True)
    args = (target.double(), weight.double(), fully_lit.double(), weight.double())
    assert torch.autograd.gradcheck(lambda g: shading_ratio_residual(g, *args), (gain,), eps=1e-7, atol=1e-5)


def test_rows_point_to_the_same_pose_fully_lit_training_frame():
    data = shared_pose_toy()  # patterns 1, 2 and fully-lit 3 share a pose

    class Unwrapped:  # only the frame list matters here
        def __init__(self, frames: list[int]) -> None:
            self.frames = frames

        def row(self, frame: int) -> int:
            return self.frames.index(frame)

    training = [0, 1, 2, 3, 4]
    rows = fully_lit_rows(data, training, Unwrapped(training))
    assert rows.tolist() == [0, 3, 3, 3, -1], "a fully-lit frame is its own reference; frame 4 has none"
    without_twin = [0, 1, 2, 4]  # frame 3 held out: its image must not supervise training
    assert fully_lit_rows(data, without_twin, Unwrapped(without_twin)).tolist() == [0, -1, -1, -1]


def test_the_warmup_pulls_the_gain_towards_the_shading_ratio():
    data = toy_lightstage(grid=7, num_frames=7, num_cameras=2, image_size=32, texture_size=16, full_every=3)
    for f in (1, 2):  # patterns 1, 2 captured in the pose of fully-lit frame 0
        for tensor in (data.vertices, data.head_R, data.head_t):
            tensor[f] = tensor[0]
    split = make_split(data, holdout_cameras=[], holdout_every=0)
    dam_cfg = DAMConfig(num_vertices=data.topology.num_vertices, texture_size=16, latent_size=8, mesh_hidden=64,
                        base_grid=4, max_channels=32, min_channels=8)  # fmt: skip
    dam, unwrapped, _ = train_dam(data, split, dam_cfg, DAMTrainConfig(epochs=2), CPU, progress=False)
    torch.manual_seed(0)
    lighting = LightingModel(LightingConfig(texture_size=16, energy_normalised=True, **SMALL_G))
    cfg = LightingTrainConfig(batch_size=2, texture_warmup_epochs=20, texture_warmup_lr=1e-2)
    renderer = MeshRenderer(data.topology.faces, data.topology.uv_faces, data.topology.uvs, CPU)
    codes = initial_codes(dam, data, unwrapped, CPU)
    term = ShadingRatioTerm(5.0)
    history = texture_warmup(lighting, dam, data, split, codes, cfg, CPU, renderer, progress=False, extra=[term])
    ratio = [h["shading_ratio"] for h in history]
    assert ratio[0] > 0 and sum(ratio[-3:]) / 3 < 0.6 * ratio[0], [round(r, 3) for r in ratio]
