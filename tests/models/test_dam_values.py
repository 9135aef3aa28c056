"""The DAM (Eq. 1) and the shared blocks by value: the normalisation statistics are a change of units, the
VAE samples z with the encoder's variance, the KL term against torch.distributions, and the named config
errors. Written against the mutants mutmut left alive in models/ (bench/RESULTS.md, "Mutation score")."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from torch import nn

from dlatrack_engine.models.blocks import ConvUpsample, UntiedBias, config_from_dict, mlp
from dlatrack_engine.models.dam import DAM, DAMConfig, DAMEncoder, kl_divergence

CFG = DAMConfig(num_vertices=7, texture_size=16, latent_size=4, base_grid=8, mesh_hidden=32)


def _inputs(batch: int = 2):
    g = torch.Generator().manual_seed(4)
    verts = 0.05 * torch.randn(batch, 7, 3, generator=g)
    tex = torch.rand(batch, 3, 16, 16, generator=g)
    view = nn.functional.normalize(torch.randn(batch, 3, generator=g), dim=1)
    return verts, tex, view


def test_normalisation_statistics_are_a_change_of_units():
    """A DAM storing (mean, std) feeds (x - mean) / std to its encoder and returns mean + std·y for its
    decoder's output y: Eq. 1 in metres / linear RGB around the training set's mean."""
    torch.manual_seed(0)
    dam = DAM(CFG)
    mean_v, mean_t = torch.randn(7, 3), torch.rand(3, 16, 16)
    dam.set_normalisation(mean_v, 0.01, mean_t, 0.2)
    verts_n, tex_n, view = _inputs()
    with torch.no_grad():
        mu, logvar = dam.encode(mean_v + 0.01 * verts_n, mean_t + 0.2 * tex_n)
        mu_n, logvar_n = dam.encoder(verts_n, tex_n)
        z = torch.randn(2, 4)
        verts, tex = dam.decode(z, view)
        decoded_v, decoded_t = dam.decoder(z, view)
    torch.testing.assert_close(mu, mu_n)
    torch.testing.assert_close(logvar, logvar_n)
    assert float(decoded_v.abs().mean()) > 1e-3 and float(decoded_t.abs().mean()) > 1e-3  # not a zero decoder
    torch.testing.assert_close(verts, mean_v + 0.01 * decoded_v)
    torch.testing.assert_close(tex, mean_t + 0.2 * decoded_t)


def test_forward_samples_z_with_the_encoders_variance():
    """Reparameterisation: z = mu + eps·exp(logvar / 2) with eps ~ N(0, I) when sampling (the default),
    z = mu otherwise; a log-variance of log 0.25 (sigma 0.5) makes a wrong scale visible."""
    torch.manual_seed(1)
    dam = DAM(CFG)
    with torch.no_grad():
        dam.encoder.head.bias[CFG.latent_size :] = math.log(0.25)
    verts, tex, view = _inputs()
    with torch.no_grad():
        mu, logvar = dam.encode(verts, tex)
        v_mean, t_mean, mu0, logvar0 = dam(verts, tex, view, sample=False)
        torch.manual_seed(7)
        v_sample, t_sample, mu1, logvar1 = dam(verts, tex, view)
        torch.manual_seed(7)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        v_ref, t_ref = dam.decode(z, view)
        v_mu, t_mu = dam.decode(mu, view)
    for a, b in ((mu0, mu), (mu1, mu), (logvar0, logvar), (logvar1, logvar), (v_mean, v_mu), (t_mean, t_mu)):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(v_sample, v_ref)
    torch.testing.assert_close(t_sample, t_ref)
    assert float((t_sample - t_mean).abs().mean()) > 1e-3  # sampling moved the output


def test_kl_divergence_matches_torch_distributions():
    g = torch.Generator().manual_seed(3)
    mu, logvar = torch.randn(3, 5, generator=g), torch.randn(3, 5, generator=g)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    expected = torch.distributions.kl_divergence(q, p).sum(dim=1).mean()  # sum over z, mean over the batch
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)
    assert float(kl_divergence(torch.zeros(2, 5), torch.zeros(2, 5))) == 0.0  # the prior itself


def test_encoder_starts_with_small_log_variances():
    """The head's weights are a tenth of nn.Linear's default (bound 1/√fan_in) and its bias is zero."""
    torch.manual_seed(0)
    head = DAMEncoder(CFG).head
    bound = 1.0 / math.sqrt(head.in_features)
    assert 0.05 * bound < float(head.weight.detach().abs().max()) <= 0.1 * bound
    assert float(head.bias.detach().abs().max()) == 0.0


def test_dam_config_errors_name_the_field():
    assert DAMConfig(num_vertices=1, texture_size=16, base_grid=8).levels == 1  # one vertex is a valid mesh
    with pytest.raises(ValueError, match=r"^DAMConfig\.num_vertices must be >= 1, got 0$"):
        DAMConfig(num_vertices=0, texture_size=16)
    with pytest.raises(ValueError, match=r"^DAMConfig\.base_grid must be a power of two, got 6$"):
        DAMConfig(num_vertices=3, texture_size=16, base_grid=6)
    with pytest.raises(ValueError, match=r"^DAMConfig\.texture_size must be a power of two, got 48$"):
        DAMConfig(num_vertices=3, texture_size=48)
    for texture in (8, 4):
        with pytest.raises(ValueError, match=rf"^DAMConfig\.texture_size \({texture}\) must be larger than base_grid"):
            DAMConfig(num_vertices=3, texture_size=texture, base_grid=8)


def test_dam_shape_errors_name_the_tensor():
    dam = DAM(CFG)
    with pytest.raises(ValueError, match=r"^DAM: texture must be \[B, 3, 16, 16\], got \[1, 3, 8, 8\]$"):
        dam.encode(torch.zeros(1, 7, 3), torch.zeros(1, 3, 8, 8))
    with pytest.raises(ValueError, match=r"^DAM: view must be \[2, 3\], got \[2, 4\]$"):
        dam.decode(torch.zeros(2, 4), torch.zeros(2, 4))


def test_untied_bias_adds_a_value_per_channel_and_pixel():
    block = UntiedBias(2, 3)
    with torch.no_grad():
        block.bias.copy_(torch.arange(18.0).view(1, 2, 3, 3))
    expected = 1.0 + torch.arange(18.0).view(1, 2, 3, 3).expand(2, -1, -1, -1)
    torch.testing.assert_close(block(torch.ones(2, 2, 3, 3)), expected)


def test_conv_upsample_bias_and_activation():
    """Tied: the deconv's own bias per channel, then LeakyReLU(0.2) by default. Untied: no deconv bias, a
    bias per pixel instead."""
    tied = ConvUpsample(2, 3, 8, untied_bias=False)
    with torch.no_grad():
        tied.deconv.weight.zero_()
        tied.deconv.bias.copy_(torch.tensor([-1.0, 0.5, 2.0]))
    out = tied(torch.randn(1, 2, 4, 4))
    assert [name for name, _ in tied.named_parameters()] == ["deconv.weight", "deconv.bias"]  # no per-pixel bias
    assert out.shape == (1, 3, 8, 8)
    torch.testing.assert_close(out, torch.tensor([-0.2, 0.5, 2.0]).view(1, 3, 1, 1).expand(1, 3, 8, 8))
    untied = ConvUpsample(2, 3, 8, untied_bias=True, activation=False)
    assert [name for name, _ in untied.named_parameters()] == ["deconv.weight", "bias.bias"]
    ramp = torch.linspace(-1.0, 1.0, 3 * 64).view(1, 3, 8, 8)
    with torch.no_grad():
        untied.deconv.weight.zero_()
        untied.bias.bias.copy_(ramp)
    torch.testing.assert_close(untied(torch.randn(1, 2, 4, 4)), ramp)


@pytest.mark.parametrize(
    ("sizes", "final", "kinds"),
    [
        ([2, 3, 4], False, "LAL"),
        ([2, 3, 4], True, "LALA"),
        ([2, 3, 4, 5], False, "LALAL"),
        ([2, 3], False, "L"),
    ],
)
def test_mlp_places_activations_between_layers(sizes, final, kinds):
    layers = list(mlp(sizes, final_activation=final))
    assert "".join("L" if isinstance(m, nn.Linear) else "A" for m in layers) == kinds
    assert all(m.negative_slope == 0.2 for m in layers if isinstance(m, nn.LeakyReLU))
    assert [m.out_features for m in layers if isinstance(m, nn.Linear)] == sizes[1:]


@dataclasses.dataclass
class _Listy:
    size: int
    names: list = dataclasses.field(default_factory=list)
    pair: tuple = (1, 2)


def test_config_from_dict_lists_every_problem_and_keeps_declared_types():
    both = r"^thing: unknown field\(s\) \['sise'\]; missing required field\(s\) \['size'\] \(known fields"
    with pytest.raises(ValueError, match=both):
        config_from_dict(_Listy, {"sise": 3}, "thing")
    built = config_from_dict(_Listy, {"size": 3, "names": ["a"], "pair": [3, 4]}, "thing")
    assert built.names == ["a"] and isinstance(built.names, list)  # a list field stays a list
    assert built.pair == (3, 4)  # JSON's list becomes the declared tuple
