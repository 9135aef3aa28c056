"""Algorithm 1 in texture space (train/texture_adaptation.py): l, then φ, fitted to one frame's cameras."""

from __future__ import annotations

import copy

import torch

from dlatrack_engine.fit.schedule import Step2Schedule
from dlatrack_engine.models.lighting import LightingConfig, LightingModel, relight
from dlatrack_engine.train.texture_adaptation import TextureTarget, adapt_in_texture_space, fit_light_code

SMALL_G = dict(mlp_width=16, light_channels=(16, 16, 8, 8, 8), texture_channels=(8, 8, 8, 8), branch_channels=8)
CAMERAS = 4  # three fit the lighting, the fourth judges it


def perturbed(model: LightingModel, scale: float, seed: int) -> LightingModel:
    torch.manual_seed(seed)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(scale * torch.randn_like(p))
    return out


def lighting_pair() -> tuple[LightingModel, TextureTarget, TextureTarget]:
    """A pre-trained G and a lighting it cannot reach with its code alone (another G's output), on the
    same frame seen by four cameras from different views, each fitting camera seeing part of the texture:
    (G, fitting cameras' target, held-out camera's target)."""
    torch.manual_seed(0)
    base = LightingModel(LightingConfig(texture_size=16, input_texture_size=16, energy_normalised=True, **SMALL_G))
    model, truth = perturbed(base, 0.1, 1), perturbed(base, 0.1, 2)
    texture = (0.2 + torch.rand(1, 3, 16, 16)).expand(CAMERAS, -1, -1, -1)
    head_view = torch.randn(1, 6).expand(CAMERAS, -1) + 0.5 * torch.randn(CAMERAS, 6)  # one pose, four views
    code = torch.rand(1, 150)
    with torch.no_grad():
        image = relight(texture, *truth(code.expand(CAMERAS, -1), head_view, texture))
    weight = torch.zeros(CAMERAS, 1, 16, 16)
    for camera, first in enumerate((0, 4, 8)):  # each fitting camera sees a band of texels...
        weight[camera, ..., first : first + 8] = 1.0
    weight[-1] = 1.0  # ...the held-out one sees them all
    fit, held = slice(0, CAMERAS - 1), slice(CAMERAS - 1, CAMERAS)
    return (
        model,
        TextureTarget(texture[fit], head_view[fit], image[fit], weight[fit]),
        TextureTarget(texture[held], head_view[held], image[held], weight[held]),
    )


def schedule(model_iterations: int) -> Step2Schedule:
    return Step2Schedule(rounds=2, light_iterations=60, light_lr=3e-2, model_iterations=model_iterations, model_lr=1e-3)


def test_adapting_phi_fits_a_lighting_the_code_alone_cannot_and_it_carries_to_an_unused_camera():
    model, fitting, held_out = lighting_pair()
    before = copy.deepcopy(model.state_dict())
    code_only, same_model = adapt_in_texture_space(model, fitting, schedule(model_iterations=0))
    code, adapted = adapt_in_texture_space(model, fitting, schedule(model_iterations=60))
    with torch.no_grad():
        fit_code_only, fit_adapted = fitting.loss(same_model, code_only), fitting.loss(adapted, code)
        held_code_only, held_adapted = held_out.loss(same_model, code_only), held_out.loss(adapted, code)
    assert fit_adapted < 0.3 * fit_code_only
    assert held_adapted < 0.3 * held_code_only  # the gain is shared texture space, not the fitting views'
    for name, value in model.state_dict().items():  # the pre-trained G is a prior, not consumed
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    assert all(p.requires_grad for p in model.parameters())
    assert not any(p.requires_grad for p in adapted.parameters())


def test_without_model_iterations_adaptation_is_the_code_fit_of_step_a():
    model, fitting, _ = lighting_pair()
    step_a_only = Step2Schedule(rounds=1, light_iterations=25, light_lr=1e-2, model_iterations=0)
    code, same = adapt_in_texture_space(model, fitting, step_a_only)
    torch.testing.assert_close(code, fit_light_code(model, fitting, 25, lr=1e-2))
    inputs = (code.expand(CAMERAS - 1, -1), fitting.head_view, fitting.texture)
    with torch.no_grad():
        torch.testing.assert_close(same(*inputs), model(*inputs))


def test_the_code_fit_lowers_the_loss_from_zero_and_leaves_the_weights_alone():
    model, fitting, _ = lighting_pair()
    model.requires_grad_(False)
    before = copy.deepcopy(model.state_dict())
    zero = torch.zeros(1, 150)
    code = fit_light_code(model, fitting, 80, lr=3e-2)
    with torch.no_grad():
        assert fitting.loss(model, code) < 0.5 * fitting.loss(model, zero)
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value, before[name], rtol=0, atol=0)
    assert not any(p.requires_grad for p in model.parameters())  # flags restored as they were
