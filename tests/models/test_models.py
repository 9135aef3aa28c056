"""Shapes, configs and start-up behaviour of the DAM, the lighting model G and the SH baseline."""

from __future__ import annotations

import math

import pytest
import torch

from dlatrack_engine.models.dam import DAM, DAMConfig, kl_divergence
from dlatrack_engine.models.lighting import (
    GAIN_ACTIVATIONS,
    LightingConfig,
    LightingModel,
    gain_from_branch,
    head_view_vector,
    relight,
)
from dlatrack_engine.models.sh import SHLighting, identity_sh_coeffs, sh_basis


@pytest.mark.parametrize(
    ("num_vertices", "texture_size", "latent", "base_grid"),
    [(5, 8, 3, 4), (123, 32, 16, 8), (64, 64, 8, 4)],
)
def test_dam_shapes_at_arbitrary_sizes(num_vertices, texture_size, latent, base_grid):
    cfg = DAMConfig(num_vertices=num_vertices, texture_size=texture_size, latent_size=latent, base_grid=base_grid)
    dam = DAM(cfg)
    verts = torch.randn(2, num_vertices, 3)
    tex = torch.rand(2, 3, texture_size, texture_size)
    mu, logvar = dam.encode(verts, tex)
    assert mu.shape == (2, latent) and logvar.shape == (2, latent)
    out_v, out_t = dam.decode(mu, torch.nn.functional.normalize(torch.randn(2, 3), dim=1))
    assert out_v.shape == (2, num_vertices, 3)
    assert out_t.shape == (2, 3, texture_size, texture_size)
    assert float(kl_divergence(mu, logvar).detach()) >= 0.0


def test_dam_normalisation_is_applied_and_saved():
    cfg = DAMConfig(num_vertices=7, texture_size=16, latent_size=4, base_grid=8)
    dam = DAM(cfg)
    mean_v, mean_t = torch.randn(7, 3), torch.rand(3, 16, 16)
    dam.set_normalisation(mean_v, 0.01, mean_t, 0.2)
    # Zero the decoder's last layers: the output must then be exactly the stored means.
    torch.nn.init.zeros_(dam.decoder.mesh[-1].weight)
    torch.nn.init.zeros_(dam.decoder.mesh[-1].bias)
    last = dam.decoder.texture[-1]
    torch.nn.init.zeros_(last.deconv.weight)
    torch.nn.init.zeros_(last.bias.bias)
    verts, tex = dam.decode(torch.randn(3, 4), torch.randn(3, 3))
    torch.testing.assert_close(verts, mean_v.expand(3, -1, -1))
    torch.testing.assert_close(tex, mean_t.expand(3, -1, -1, -1))
    state = dam.state_dict()
    for key in ("mean_vertices", "vertex_std", "mean_texture", "texture_std"):
        assert key in state
    assert float(state["texture_std"]) == pytest.approx(0.2)


def test_dam_rejects_wrong_shapes_with_names():
    dam = DAM(DAMConfig(num_vertices=7, texture_size=16, latent_size=4))
    with pytest.raises(ValueError, match=r"vertices must be \[B, 7, 3\]"):
        dam.encode(torch.zeros(1, 8, 3), torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match="z must be"):
        dam.decode(torch.zeros(1, 5), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="mean_texture: expected"):
        dam.set_normalisation(torch.zeros(7, 3), 1.0, torch.zeros(3, 8, 8), 1.0)


def test_config_round_trip_and_named_errors():
    cfg = DAMConfig(num_vertices=10, texture_size=32, latent_size=6, max_channels=32)
    assert DAMConfig.from_dict(cfg.to_dict()) == cfg
    lcfg = LightingConfig(texture_size=64, input_texture_size=32, light_channels=(8, 8, 8, 8, 8))
    import json

    assert LightingConfig.from_dict(json.loads(json.dumps(lcfg.to_dict()))) == lcfg
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['textur_size'\]"):
        DAMConfig.from_dict({"num_vertices": 3, "texture_size": 16, "textur_size": 3})
    with pytest.raises(ValueError, match=r"missing required field\(s\) \['texture_size'\]"):
        LightingConfig.from_dict({"code_size": 150})
    with pytest.raises(ValueError, match="texture_size must be a power of two"):
        DAMConfig(num_vertices=3, texture_size=48)


@pytest.mark.parametrize("activation", GAIN_ACTIVATIONS)
@pytest.mark.parametrize(("input_size", "texture_size"), [(16, 16), (32, 64), (64, 32), (256, 256)])
def test_lighting_model_starts_as_identity(input_size, texture_size, activation):
    small = dict(mlp_width=32, light_channels=(32, 16, 16, 8, 8), texture_channels=(8, 8, 16, 16), branch_channels=8)
    cfg = LightingConfig(texture_size=texture_size, input_texture_size=input_size, gain_activation=activation, **small)
    model = LightingModel(cfg)
    texture = torch.rand(2, 3, texture_size, texture_size)
    code = torch.rand(2, 150)
    hv = head_view_vector(torch.randn(2, 3), torch.randn(2, 3))
    gain, bias = model(code, hv, texture)
    assert gain.shape == texture.shape and bias.shape == texture.shape
    torch.testing.assert_close(gain, torch.ones_like(gain))
    torch.testing.assert_close(bias, torch.zeros_like(bias))
    torch.testing.assert_close(relight(texture, gain, bias), texture)


def test_abs_gain_has_no_flat_region():
    """The sample-avatar collapse (issue 4): a softplus gain pushed far negative has ~zero gradient and stays
    at ~0; the |1 + x| gain keeps a unit gradient everywhere, so a gain driven to ~0 can come back."""
    x = torch.tensor([-20.0, -1.5, -0.99, 0.0, 3.0], requires_grad=True)
    gain_from_branch(x, "abs").sum().backward()
    torch.testing.assert_close(x.grad.abs(), torch.ones_like(x))
    torch.testing.assert_close(gain_from_branch(torch.zeros(3), "abs"), torch.ones(3))
    y = torch.tensor([-20.0], requires_grad=True)
    gain_from_branch(y, "softplus").sum().backward()
    assert float(y.grad) < 1e-6
    with pytest.raises(ValueError, match="gain_activation"):
        LightingConfig(texture_size=16, input_texture_size=16, gain_activation="exp")


def test_lighting_model_learns_a_code_dependent_gain():
    """After a few steps G's output depends on the light code (gradients reach the MLPs through the zero
    init), and it can drive gain towards a target: the identity start is not a dead end."""
    torch.manual_seed(0)
    cfg = LightingConfig(
        texture_size=16,
        input_texture_size=16,
        mlp_width=16,
        light_channels=(16, 16, 16, 8, 8),
        texture_channels=(8, 8, 8, 8),
        branch_channels=8,
    )
    model = LightingModel(cfg)
    texture = torch.rand(2, 3, 16, 16)
    code = torch.stack([torch.zeros(150), torch.ones(150)])
    target = torch.stack([torch.full((3, 16, 16), 0.3), torch.full((3, 16, 16), 1.5)])
    opt = torch.optim.Adam(model.parameters(), lr=2e-2)
    hv = torch.zeros(2, 6)
    first = None
    for _ in range(40):
        gain, _ = model(code, hv, texture)
        loss = (gain - target).abs().mean()
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3 * first
    gain, _ = model(code, hv, texture)
    assert (gain[1].mean() - gain[0].mean()).item() > 0.5


def test_lighting_model_rejects_wrong_code_size():
    model = LightingModel(LightingConfig(texture_size=16, input_texture_size=16))
    with pytest.raises(ValueError, match=r"light_code must be \[1, 150\]"):
        model(torch.zeros(1, 27), torch.zeros(1, 6), torch.zeros(1, 3, 16, 16))


def test_sh_identity_and_known_direction():
    normals = torch.nn.functional.normalize(torch.randn(1, 3, 8, 8), dim=1)
    texture = torch.rand(1, 3, 8, 8)
    sh = SHLighting()
    gain, bias = sh(identity_sh_coeffs(1), normals, texture)
    torch.testing.assert_close(gain, torch.ones_like(gain))
    assert float(bias.abs().max()) == 0.0
    # Only the z band-1 coefficient, red channel: gain_r = (2π/√3)·(√3/√(4π))·n_z = √π · n_z.
    coeffs = torch.zeros(1, 27)
    coeffs[0, 2] = 1.0
    gain, _ = sh(coeffs, normals, texture)
    torch.testing.assert_close(gain[0, 0], math.sqrt(math.pi) * normals[0, 2])
    assert float(gain[0, 1:].abs().max()) == 0.0


def test_sh_shading_gradients_match_finite_differences():
    torch.manual_seed(1)
    coeffs = torch.randn(2, 27, dtype=torch.float64, requires_grad=True)
    normals = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    texture = torch.rand(2, 3, 4, 4, dtype=torch.float64)

    def shade(c, n):
        gain, bias = SHLighting()(c, n, texture)
        return relight(texture, gain, bias)

    assert torch.autograd.gradcheck(shade, (coeffs, normals), eps=1e-6, atol=1e-5)


def test_sh_basis_is_orthogonal_over_the_sphere():
    """Sanity of the constants: Monte-Carlo Gram matrix of the basis is diagonal."""
    torch.manual_seed(2)
    n = torch.nn.functional.normalize(torch.randn(200_000, 3, dtype=torch.float64), dim=1)
    basis = sh_basis(n)
    gram = basis.T @ basis / n.shape[0]
    off = gram - torch.diag(torch.diagonal(gram))
    assert float(off.abs().max()) < 0.02 * float(torch.diagonal(gram).min())
