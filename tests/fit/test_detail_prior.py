"""The prior on the detail that step 2's adapted φ redraws (fit/detail_prior.py): its value by hand, what it lets
through (smooth changes) and what it charges (fine structure), and that Algorithm 1 pays it where the schedule
says (the first `detail_rounds` half-rounds b, on both of step 2's render paths)."""

from __future__ import annotations

import copy

import pytest
import torch
from fit_fixtures import HEIGHT, WIDTH, gt_params, intrinsics, render_clip, responsive_avatar

from dlatrack_engine.fit.detail_prior import DetailPrior
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.schedule import Schedule, Step2Schedule
from dlatrack_engine.fit.step2 import adapt_lighting
from dlatrack_engine.fit.video_lighting import VideoLighting

pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


@pytest.fixture(scope="module")
def inputs():
    """(G, code [2, C], head_view [2, 6], texture [2, 3, T, T], G's maps at those inputs)."""
    avatar = responsive_avatar()
    network = avatar.lighting
    texture = avatar.dam.mean_texture.expand(2, -1, -1, -1).clone()
    code = torch.rand(2, network.cfg.code_size, generator=torch.Generator().manual_seed(4))
    head_view = torch.tensor([[3.0, 0.2, 0.1, 0.0, 0.0, 1.0], [3.1, -0.3, 0.0, 0.2, 0.1, 0.97]])
    with torch.no_grad():
        gain, bias = network(code, head_view, texture)
    return network, code, head_view, texture, gain, bias


def test_nothing_is_charged_where_phi_has_not_moved(inputs):
    network, code, head_view, texture, gain, bias = inputs
    assert torch.equal(DetailPrior(network, 1.0)(code, head_view, texture, gain, bias), torch.zeros(2))


def test_one_texel_of_bias_by_hand(inputs):
    """A bias change of a on one interior texel of one channel: pool₂ makes it a/4 on one pooled texel, whose
    Laplacian is −a there and +a/4 at its four neighbours; R = 255 · 2a / (3 (T/2)²), times the weight."""
    network, code, head_view, texture, gain, bias = inputs
    size = texture.shape[-1]
    changed = bias.clone()
    changed[0, 1, size // 2, size // 2 - 2] += 0.1  # an interior texel of the pooled grid too
    value = DetailPrior(network, 2.5)(code, head_view, texture, gain, changed)
    expected = 2.5 * 255.0 * 2 * 0.1 / (3 * (size // 2) ** 2)
    torch.testing.assert_close(value, torch.tensor([expected, 0.0]), rtol=1e-5, atol=1e-9)


def test_smooth_changes_are_free_and_fine_ones_are_not(inputs):
    """A gain raised by the same amount on every texel (per colour) costs nothing, whatever the texture's own
    edges (the light's energy itself lives in l, which φ₀ sees too); a smooth bias field costs little; the same
    amplitude in a pattern of one-pixel stripes, what moving the texture's edges by a texel takes, costs far
    more (measured 53x on the fixtures' 32² maps, where the bump spans only 16 pooled texels)."""
    network, code, head_view, texture, gain, bias = inputs
    prior = DetailPrior(network, 1.0)
    brighter = prior(code, head_view, texture, gain + torch.tensor([0.5, 0.4, 0.6])[:, None, None], bias)
    assert float(brighter.abs().max()) < 1e-3, brighter
    size = texture.shape[-1]
    u = torch.linspace(-1, 1, size)
    smooth = 0.05 * torch.exp(-(u[:, None] ** 2 + u[None, :] ** 2) / 0.5)
    stripes = 0.05 * (torch.arange(size) // 2 % 2).float()[None, :].expand(size, size)
    smooth_cost = prior(code, head_view, texture, gain, bias + smooth)
    stripes_cost = prior(code, head_view, texture, gain, bias + stripes)
    assert bool((stripes_cost > 20 * smooth_cost).all()), (smooth_cost, stripes_cost)
    # a gain change is weighed by the texture's mean level: the same stripes in gain cost level x as much
    level = texture.mean(dim=(2, 3))
    gain_cost = prior(code, head_view, texture, gain + stripes, bias)
    torch.testing.assert_close(gain_cost, stripes_cost * level.mean(1), rtol=0.25, atol=0.0)


def test_the_gradient_reaches_phi_and_not_the_frozen_copy(inputs):
    network, code, head_view, texture, _, _ = inputs
    adapted = copy.deepcopy(network).requires_grad_(True)  # the avatar keeps its own weights frozen
    prior = DetailPrior(adapted, 1.0)
    with torch.no_grad():
        for p in adapted.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    gain, bias = adapted(code, head_view, texture)
    value = prior(code, head_view, texture, gain, bias).sum()
    assert float(value.detach()) > 0.0
    value.backward()
    assert all(p.grad is not None for p in adapted.parameters())
    assert all(p.grad is None and not p.requires_grad for p in prior.start.parameters())


def _fine_change(network_start, lighting: VideoLighting, params: FrameParams, scene: FaceScene) -> float:
    """R(φ) with weight 1 of the adapted lighting against φ₀ at the key frames (levels)."""
    with torch.no_grad():
        out = scene.render(params, lighting)
        prior = DetailPrior(network_start, 1.0)
        code = lighting.code.expand(len(params), -1)
        return float(prior(code, scene.head_view(params), out.texture, out.gain, out.bias).mean())


@pytest.mark.parametrize("pose_lr_scale", [0.0, 15.0], ids=["fixed geometry", "poses free"])
def test_algorithm_1_pays_the_prior_in_its_first_rounds(pose_lr_scale):
    """On the fixtures' clip, started 4 mm too far: with the prior in every round (a large weight) the adapted
    φ redraws far less fine detail than without it, on both render paths of half-round b; with the prior in the
    first of two rounds only, the second round adds detail again (more than with the prior throughout)."""
    avatar = responsive_avatar()
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    truth = gt_params(6)
    frames, _ = render_clip(avatar, truth)
    start = FrameParams(truth.r.clone(), truth.t * 1.04, truth.z.clone())
    changes = {}
    for rounds_with_prior in (0, 1, 2):
        schedule = Schedule(step2=Step2Schedule(key_frames=6, rounds=2, light_iterations=8, light_lr=5e-2,
                                                model_iterations=12, model_lr=3e-3, pose_lr_scale=pose_lr_scale,
                                                batch_size=3, detail_rounds=rounds_with_prior, detail_weight=50.0))
        lighting = VideoLighting("G", avatar)
        torch.manual_seed(0)
        refined, _ = adapt_lighting(scene, frames, start, lighting, schedule)
        changes[rounds_with_prior] = _fine_change(avatar.lighting, lighting, refined, scene)
    assert changes[2] < 0.5 * changes[0], changes
    assert changes[2] < changes[1] < changes[0], changes
