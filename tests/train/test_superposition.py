"""The superposition loss: exact splits of a code, zero for an additive G, and it trains G towards additivity."""

from __future__ import annotations

import torch

from dlatrack_engine.models.lighting import LightingConfig, LightingModel, relight
from dlatrack_engine.train.experiments.superposition import non_additivity, random_split, superposition_residual

SMALL_G = dict(
    texture_size=16, input_texture_size=16, mlp_width=32, light_channels=(32, 32, 16, 16, 16),
    texture_channels=(8, 16, 16, 16), branch_channels=16,
)  # fmt: skip


def _inputs(batch: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pattern codes (2-6 of 50 groups lit, random colours), head/view vectors and textures."""
    gen = torch.Generator().manual_seed(seed)
    codes = torch.zeros(batch, 50, 3)
    for row in range(batch):
        lit = torch.randperm(50, generator=gen)[: 2 + row % 5]
        codes[row, lit] = 0.5 + torch.rand(len(lit), 3, generator=gen)
    head_view = torch.randn(batch, 6, generator=gen)
    texture = torch.rand(batch, 3, 16, 16, generator=gen)
    return codes.flatten(1), head_view, texture


def _residual(model: LightingModel, codes, head_view, texture, seed: int = 1) -> torch.Tensor:
    gain, bias = model(codes, head_view, texture)
    generator = torch.Generator().manual_seed(seed)
    return superposition_residual(model, codes, head_view, texture, relight(texture, gain, bias), generator=generator)


def test_random_split_sends_each_group_whole_to_one_side():
    codes, _, _ = _inputs()
    part_a, part_b = random_split(codes, torch.Generator().manual_seed(3))
    assert torch.equal(part_a + part_b, codes)
    in_a = part_a.view(len(codes), 50, 3).ne(0).any(dim=2)
    in_b = part_b.view(len(codes), 50, 3).ne(0).any(dim=2)
    assert not (in_a & in_b).any()
    assert torch.equal(in_a | in_b, codes.view(len(codes), 50, 3).ne(0).any(dim=2))
    assert in_a.any() and in_b.any()


def test_residual_is_zero_for_an_additive_g_and_the_texture_for_a_constant_one():
    codes, head_view, texture = _inputs()
    # Energy-normalised G at its initialisation: g = s(l), b = 0, and s is linear in l.
    additive = LightingModel(LightingConfig(energy_normalised=True, **SMALL_G))
    assert _residual(additive, codes, head_view, texture).abs().max() < 1e-6
    # The plain G at its initialisation: g = 1 for every code, so T(l) − T(l_A) − T(l_B) = −T̂.
    constant = LightingModel(LightingConfig(energy_normalised=False, **SMALL_G))
    expected = texture.abs().mean(dim=(1, 2, 3))
    assert torch.allclose(_residual(constant, codes, head_view, texture), expected, atol=1e-5)
    # The benchmark's relative measure: 0 for the additive G, |T̂| / |T̂| = 1 for the constant one.
    assert non_additivity(additive, codes, head_view, texture) < 1e-6
    assert abs(non_additivity(constant, codes, head_view, texture) - 1.0) < 1e-5


def test_minimising_the_residual_makes_g_additive_on_splits_it_never_saw():
    # The plain G starts with g = 1 for every code: far from additive, and it has to learn g ∝ light energy.
    torch.manual_seed(0)
    model = LightingModel(LightingConfig(energy_normalised=False, gain_activation="abs", **SMALL_G))
    codes, head_view, texture = _inputs(seed=0)
    held_out = _inputs(seed=5)
    with torch.no_grad():
        before = float(_residual(model, *held_out, seed=9).mean())
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(40):
        loss = _residual(model, codes, head_view, texture, seed=100 + step).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        after = float(_residual(model, *held_out, seed=9).mean())
    assert before > 0.3
    assert after < 0.3 * before
