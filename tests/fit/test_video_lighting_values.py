"""fit/video_lighting.py: the three lighting kinds' starting codes and refusals, the "without pre-training"
ablation's seeded re-initialisation (and that it leaves the global RNG alone), per-frame codes and their views,
and the held maps of step 3."""

from __future__ import annotations

import pytest
import torch
from fit_fixtures import HEIGHT, WIDTH, intrinsics

from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.video_lighting import LIGHTING_KINDS, HeldMaps, VideoLighting, lighting_at
from dlatrack_engine.models.sh import NUM_SH_COEFFS, identity_sh_coeffs


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_kinds_and_their_refusals(avatar):
    assert LIGHTING_KINDS == ("G", "SH", "none")
    with pytest.raises(ValueError, match=r"^unknown lighting 'g': expected one of \('G', 'SH', 'none'\)$"):
        VideoLighting("g", avatar)
    with pytest.raises(ValueError, match=r"^SH lighting needs the renderer \(per-texel normals come from the UV "
                                         r"raster\)$"):
        VideoLighting("SH", avatar)


def test_g_starts_from_l_zero_and_a_copy_of_the_avatars_g(avatar):
    lighting = VideoLighting("G", avatar, frames=0)
    assert lighting.kind == "G" and lighting.network is not avatar.lighting
    assert _same_weights(lighting.network, avatar.lighting)
    assert torch.equal(lighting.code, torch.zeros(1, avatar.lighting.cfg.code_size)) and lighting.code.requires_grad
    assert lighting.offsets is None and lighting.row_map is None and lighting.fit_shared and not lighting.is_sequence
    assert lighting.network_parameters() == list(lighting.network.parameters())
    assert lighting.code_parameters() == [lighting.code]
    with torch.no_grad():
        lighting.code.fill_(0.5)
    assert torch.equal(lighting.light_code(), torch.full((150,), 0.5)) and not lighting.light_code().requires_grad
    sequence = VideoLighting("G", avatar, frames=4)
    assert torch.equal(sequence.offsets, torch.zeros(4, 150)) and sequence.offsets.requires_grad
    assert sequence.is_sequence
    assert VideoLighting("G", avatar, frames=1).offsets.shape == (1, 150)


def test_without_pre_training_phi_is_reinitialised_by_its_seed_only(avatar):
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    fresh = VideoLighting("G", avatar, pretrained=False)
    assert torch.equal(torch.rand(3), expected_next)  # the global RNG is left where it was
    again = VideoLighting("G", avatar, pretrained=False, seed=0)
    other = VideoLighting("G", avatar, pretrained=False, seed=1)
    assert _same_weights(fresh.network, again.network) and not _same_weights(fresh.network, other.network)
    changed = [name for name, p in fresh.network.named_parameters()
               if not torch.equal(p, dict(avatar.lighting.named_parameters())[name])]
    assert len(changed) == len(list(avatar.lighting.parameters()))  # every layer re-drawn


def test_sh_and_none(avatar):
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    sh = VideoLighting("SH", avatar, scene.renderer, frames=2)
    assert torch.equal(sh.code, identity_sh_coeffs(1)) and sh.code.requires_grad and sh.network is None
    assert sh.offsets.shape == (2, NUM_SH_COEFFS) and sh.network_parameters() == []
    assert sh.at([1]).sh is sh.sh and sh.renderer is scene.renderer
    none = VideoLighting("none", avatar, frames=3)
    assert none.code.shape == (1, 0) and not none.code.requires_grad and none.offsets is None
    texture = torch.rand(2, 3, 8, 8)
    gain, bias = none.gain_bias(torch.zeros(2, 6), texture, None, None)
    assert torch.equal(gain, torch.ones(2, 3, 8, 8)) and torch.equal(bias, torch.zeros(2, 3, 8, 8))


def test_sh_gain_at_the_identity_code_is_one_and_a_band_one_code_follows_the_normals(avatar):
    """The SH stand-in shades with per-texel normals in the camera frame: at the ambient-only code the gain is 1;
    with a band-1 z term added, the gain's change from 1 flips sign when the head turns 180° about y (every
    normal's z flips)."""
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    sh = VideoLighting("SH", avatar, scene.renderer)
    with torch.no_grad():
        head, texture = avatar.decode(torch.zeros(2, 6), torch.tensor([[0.0, 0.0, 1.0]] * 2))
        world = head + torch.tensor([0.0, 0.0, 0.5])
        gain, bias = sh.gain_bias(torch.zeros(2, 6), texture, world, avatar.topology.faces)
        covered = scene.renderer.uv_rast(texture.shape[-1])[..., 3] > 0
        assert torch.allclose(gain[:, :, covered[0]], torch.ones(1), atol=1e-5) and torch.equal(bias, 0 * texture)
        code = identity_sh_coeffs(1).view(1, 3, 9)
        code[:, :, 2] = 0.5  # the band-1 z term
        sh.code.copy_(code.view(1, -1))
        turned = head * torch.tensor([-1.0, 1.0, -1.0]) + torch.tensor([0.0, 0.0, 0.5])
        gain_a, _ = sh.gain_bias(torch.zeros(1, 6), texture[:1], world[:1], avatar.topology.faces)
        gain_b, _ = sh.gain_bias(torch.zeros(1, 6), texture[:1], turned[:1], avatar.topology.faces)
    a, b = gain_a[0, 0][covered[0]], gain_b[0, 0][covered[0]]
    assert (a - 1.0).abs().mean() > 0.05 and torch.allclose(a - 1.0, -(b - 1.0), atol=1e-4)


def test_frame_codes_views_and_the_row_map(avatar):
    lighting = VideoLighting("G", avatar, frames=3)
    with torch.no_grad():
        lighting.code.normal_()
        lighting.offsets.normal_()
    codes = lighting.frame_codes()
    assert torch.equal(codes, lighting.code + lighting.offsets) and not codes.requires_grad
    view = lighting.at([2, 0])
    assert torch.equal(view.code, (lighting.code + lighting.offsets)[[2, 0]])
    assert view.offsets is None and view.row_map is None and view.network is lighting.network
    assert view.kind == "G" and view.at([0]) is view
    assert lighting_at(lighting, [1]).code.shape == (1, 150)
    lighting.row_map = torch.tensor([2, 2, 0])
    assert torch.equal(lighting.at([0, 2]).code, (lighting.code + lighting.offsets)[[2, 0]])
    static = VideoLighting("G", avatar)
    assert torch.equal(static.frame_codes(), static.code) and static.frame_codes().shape == (1, 150)


def test_set_frame_codes_splits_into_the_mean_and_the_rest(avatar):
    lighting = VideoLighting("G", avatar, frames=2)
    lighting.row_map = torch.tensor([0, 1])
    codes = torch.arange(3 * 150, dtype=torch.float64).view(3, 150)  # another dtype: converted
    lighting.set_frame_codes(codes)
    assert torch.equal(lighting.code, codes.float().mean(0, keepdim=True)) and lighting.code.requires_grad
    assert lighting.offsets.shape == (3, 150) and not lighting.offsets.requires_grad
    assert torch.equal(lighting.offsets, codes.float() - codes.float().mean(0, keepdim=True))
    assert lighting.row_map is None and lighting.offsets.dtype == torch.float32
    lighting.set_frame_codes(codes.flatten()[:300])  # flat: reshaped to rows of C
    assert lighting.frame_codes().shape == (2, 150)


def test_g_gain_bias_is_the_network_at_the_code_for_each_frame(avatar):
    lighting = VideoLighting("G", avatar)
    with torch.no_grad():
        lighting.code.normal_()
    texture, head_view = torch.rand(2, 3, 32, 32), torch.randn(2, 6)
    gain, bias = lighting.gain_bias(head_view, texture, None, None)
    g, b = lighting.network(lighting.code.detach().expand(2, -1), head_view, texture)
    assert torch.equal(gain, g) and torch.equal(bias, b)


def test_held_maps_are_returned_for_any_pose_of_their_shape_only():
    gain, bias = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    held = HeldMaps(gain, bias)
    g, b = held.gain_bias(torch.randn(2, 6), torch.rand(2, 3, 8, 8), None, None)
    assert g is gain and b is bias
    with pytest.raises(ValueError, match=r"^HeldMaps: held for textures \(2, 3, 8, 8\), got \(1, 3, 8, 8\)$"):
        held.gain_bias(torch.randn(1, 6), torch.rand(1, 3, 8, 8), None, None)
