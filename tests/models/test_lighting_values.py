"""G (Eq. 2-3) by value: how its outputs are assembled from the two branches, the resampling to and from
its input size against a hand-written antialiased resampler, its layer layout, continuity in every input,
and the named errors. Written against the mutants mutmut left alive in models/ (bench/RESULTS.md,
"Mutation score")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlatrack_engine.models.lighting import (
    LightingConfig,
    LightingModel,
    gain_from_branch,
    light_energy,
    relight,
)

SMALL_G = dict(mlp_width=16, light_channels=(16, 16, 8, 8, 4), texture_channels=(4, 8, 8, 12), branch_channels=8)


def _model(texture_size: int = 32, input_size: int = 16, seed: int = 3, **kwargs) -> LightingModel:
    """A float64 G moved away from its identity start, so the checks compare real outputs."""
    torch.manual_seed(seed)
    cfg = LightingConfig(texture_size=texture_size, input_texture_size=input_size, **(SMALL_G | kwargs))
    model = LightingModel(cfg).double()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def _inputs(batch: int, texture_size: int):
    g = torch.Generator().manual_seed(11)
    code = torch.rand(batch, 150, generator=g, dtype=torch.float64)
    head_view = torch.randn(batch, 6, generator=g, dtype=torch.float64)
    texture = torch.rand(batch, 3, texture_size, texture_size, generator=g, dtype=torch.float64)
    return code, head_view, texture


def _resample(image: torch.Tensor, size: int) -> torch.Tensor:
    """Separable triangle-filter resampling with half-pixel centres (bilinear when enlarging, an area-aware
    tent of the scale's width when shrinking), weights renormalised at the border."""
    n = image.shape[-1]
    scale = n / size
    support = max(1.0, scale)
    weights = np.zeros((size, n))
    for i in range(size):
        centre = (i + 0.5) * scale - 0.5
        weights[i] = np.maximum(0.0, 1.0 - np.abs(np.arange(n) - centre) / support)
        weights[i] /= weights[i].sum()
    w = torch.as_tensor(weights, dtype=image.dtype)
    return torch.einsum("ij,bcjk,lk->bcil", w, image, w)


def _capture(model: LightingModel) -> dict:
    """Forward hooks recording the texture G's encoder sees and the raw outputs of both branches."""
    seen: dict = {}
    model.texture_encoder.register_forward_pre_hook(lambda m, args: seen.__setitem__("small", args[0]))
    model.gain_branch.register_forward_hook(lambda m, args, out: seen.__setitem__("gain", out))
    model.bias_branch.register_forward_hook(lambda m, args, out: seen.__setitem__("bias", out))
    return seen


def _softplus_gain(x: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(x + math.log(math.e - 1.0)))


@pytest.mark.parametrize("activation", ["abs", "softplus"])
@pytest.mark.parametrize("energy_normalised", [True, False])
def test_outputs_are_assembled_from_the_branches(activation, energy_normalised):
    """g = s(l)·act(x_g) and b = s(l)·bias_scale·x_b at G's input size (s = 1 without energy
    normalisation), then bilinearly enlarged to the texture; G sees the texture shrunk with antialiasing."""
    model = _model(gain_activation=activation, energy_normalised=energy_normalised, bias_scale=0.05)
    seen = _capture(model)
    code, head_view, texture = _inputs(2, 32)
    with torch.no_grad():
        gain, bias = model(code, head_view, texture)
    torch.testing.assert_close(seen["small"], _resample(texture, 16))
    act = (1.0 + seen["gain"]).abs() if activation == "abs" else _softplus_gain(seen["gain"])
    energy = light_energy(code)[:, :, None, None] if energy_normalised else torch.ones(2, 3, 1, 1, dtype=code.dtype)
    assert float(seen["bias"].abs().mean()) > 1e-3 and float((act - 1.0).abs().mean()) > 1e-3
    torch.testing.assert_close(gain, _resample(energy * act, 32))
    torch.testing.assert_close(bias, _resample(energy * 0.05 * seen["bias"], 32))


def test_at_its_own_size_g_sees_the_texture_itself():
    model = _model(texture_size=16, input_size=16)
    seen = _capture(model)
    code, head_view, texture = _inputs(1, 16)
    with torch.no_grad():
        gain, _ = model(code, head_view, texture)
    assert torch.equal(seen["small"], texture)
    torch.testing.assert_close(gain, light_energy(code)[:, :, None, None] * _softplus_gain(seen["gain"]))


def test_a_plain_g_reads_the_code_itself():
    """Without energy normalisation the code is not reduced to its pattern: 2·l is a different input."""
    model = _model(energy_normalised=False)
    code, head_view, texture = _inputs(1, 32)
    with torch.no_grad():
        gain, _ = model(code, head_view, texture)
        gain_2, _ = model(2.0 * code, head_view, texture)
    # The perturbed G depends weakly on l (mean |Δg| ~2e-6), but the pattern of 2·l is l's to 1e-16.
    assert float((gain_2 - gain).abs().mean()) > 1e-8
    assert float((gain_2 - 2.0 * gain).abs().mean()) > 0.5


def test_layout_every_layer_but_the_branch_outputs_is_followed_by_leaky_relu():
    """Supplement Fig. 10: LeakyReLU(0.2) after every linear and convolutional layer except the last layer of
    the gain and bias branches (their outputs go to the gain activation and the bias scale)."""
    model = _model()
    leaves = [(name, m) for name, m in model.named_modules() if not list(m.children())]
    weighted = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    for (name, module), (_, after) in zip(leaves, [*leaves[1:], ("", None)], strict=True):
        if not isinstance(module, weighted):
            continue
        if name in ("gain_branch.2", "bias_branch.2"):
            assert after is None or not isinstance(after, nn.LeakyReLU), name
        else:
            assert isinstance(after, nn.LeakyReLU) and after.negative_slope == 0.2, name
    deconvs = [m for m in model.deconvs if isinstance(m, nn.ConvTranspose2d)]
    assert [m.stride for m in deconvs] == [(1, 1)] * 4  # input 16: the feature grid is 1x1, no doubling


def test_a_large_input_size_uses_a_light_grid_with_doublings():
    """input 512: feature maps of 32², the FC grid is 2x2 (C·2² outputs) and four stride-2 deconvs double it."""
    model = _model(texture_size=32, input_size=512)
    assert model.cfg.light_grid == 2 and model.fc[0].out_features == 16 * 4
    assert [m.stride for m in model.deconvs if isinstance(m, nn.ConvTranspose2d)] == [(2, 2)] * 4
    code, head_view, texture = _inputs(1, 32)
    with torch.no_grad():
        gain, bias = model(code, head_view, texture)
    assert gain.shape == bias.shape == texture.shape and torch.isfinite(gain).all()


def test_g_is_differentiable_in_every_input():
    """Continuity (and a derivative matching finite differences) in the head pose / view h_v, the fully-lit
    texture and the light code, through the resampling on both sides; each input does change the output."""
    model = _model(texture_size=8, input_size=16)
    code, head_view, texture = _inputs(1, 8)
    code = (code + 0.2).requires_grad_()
    head_view.requires_grad_()
    texture.requires_grad_()

    def relit(c, h, t):
        return relight(t, *model(c, h, t))

    assert torch.autograd.gradcheck(relit, (code, head_view, texture), eps=1e-6, atol=1e-6)
    weights = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    (weights * relit(code, head_view, texture)).sum().backward()
    for x in (code, head_view, texture):
        assert float(x.grad.abs().max()) > 1e-6


def test_relight_and_gain_values():
    texture, gain, bias = torch.tensor([0.5, 0.2]), torch.tensor([2.0, 0.5]), torch.tensor([0.1, -0.3])
    torch.testing.assert_close(relight(texture, gain, bias), torch.tensor([1.1, -0.2]))  # Eq. 2
    x = torch.tensor([-3.0, -0.5, 0.0, 0.5])
    torch.testing.assert_close(gain_from_branch(x, "abs"), torch.tensor([2.0, 0.5, 1.0, 1.5]))
    torch.testing.assert_close(gain_from_branch(x, "softplus"), _softplus_gain(x))


def test_shape_errors_name_the_input():
    model = LightingModel(LightingConfig(texture_size=16, input_texture_size=16, **SMALL_G))
    code, view, texture = torch.zeros(1, 150), torch.zeros(1, 6), torch.zeros(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"^LightingModel: head_view must be \[1, 6\], got \[1, 5\]$"):
        model(code, torch.zeros(1, 5), texture)
    with pytest.raises(ValueError, match=r"^LightingModel: texture must be \[1, 3, 16, 16\], got \[1, 3, 8, 8\]$"):
        model(code, view, torch.zeros(1, 3, 8, 8))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(texture_size=48), r"^LightingConfig\.texture_size must be a power of two, got 48$"),
        (dict(input_texture_size=24), r"^LightingConfig\.input_texture_size must be a power of two, got 24$"),
        (dict(input_texture_size=8), r"^LightingConfig\.input_texture_size must be >= 16, got 8$"),
        (dict(light_channels=(8, 8)), r"^LightingConfig\.light_channels needs 5 widths \(FC \+ 4 deconvs\), got"),
        (dict(texture_channels=(8,)), r"^LightingConfig\.texture_channels needs 4 widths, got \(8,\)$"),
    ],
)
def test_config_errors_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LightingConfig(**({"texture_size": 16} | kwargs))


def test_config_from_dict_names_the_config():
    with pytest.raises(ValueError, match=r"^lighting config: missing required field\(s\) \['texture_size'\]"):
        LightingConfig.from_dict({"code_size": 150})


def test_the_channels_last_weights_give_the_maps_and_gradients_of_the_default_layout():
    """G keeps its convolution weights channels-last for speed; the same weights in the default layout must
    give the same maps and weight gradients, and a saved copy is an ordinary contiguous tensor."""
    model = _model()
    weights = [p for p in model.parameters() if p.dim() == 4]
    assert weights and all(p.is_contiguous(memory_format=torch.channels_last) for p in weights)
    plain = _model()
    with torch.no_grad():
        for p in plain.parameters():
            p.set_(p.detach().contiguous())
    assert not any(p.is_contiguous(memory_format=torch.channels_last) for p in plain.parameters() if p.dim() == 4)
    code, head_view, texture = _inputs(2, 32)
    outputs, grads = [], []
    for m in (model, plain):
        gain, bias = m(code, head_view, texture)
        (gain.square().sum() + bias.sum()).backward()
        outputs.append(torch.cat([gain, bias]))
        grads.append(torch.cat([p.grad.flatten() for p in m.parameters()]))
    assert torch.allclose(outputs[0], outputs[1], atol=1e-12) and torch.allclose(grads[0], grads[1], atol=1e-10)
    saved = {k: v.contiguous() for k, v in model.state_dict().items()}
    assert all(v.is_contiguous() for v in saved.values())
