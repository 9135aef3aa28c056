"""Pattern mixing (train/pattern_mix.py): partners are exactly the same-pose pattern frames, and a mixed
sample's code and target are scaled and summed consistently."""

from __future__ import annotations

import pytest
import torch
from shared_pose_toy import shared_pose_toy

from dlatrack_engine.train.pattern_mix import mixed_exposures, same_pose_partners


@pytest.fixture(scope="module")
def toy():
    return shared_pose_toy()


def test_partners_are_the_other_pattern_frames_of_the_same_pose(toy):
    assert same_pose_partners(toy, list(range(7))) == {1: [2], 2: [1]}
    assert same_pose_partners(toy, [0, 1, 3, 4, 5, 6]) == {}, "a held-out partner is never used"
    toy.vertices[2, 0, 0] += 1e-6
    try:
        assert same_pose_partners(toy, list(range(7))) == {}, "a moved head is not the same instant"
    finally:
        toy.vertices[2, 0, 0] -= 1e-6


def energy_image(toy, frame: int) -> torch.Tensor:
    """A stand-in exposure whose every pixel is the frame's per-channel light energy."""
    return torch.ones(4, 5, 3) * toy.light_codes[frame].view(-1, 3).sum(0)


def test_mixed_code_and_target_are_the_same_scaled_sum(toy):
    frames, cams = torch.tensor([1, 2, 4]), torch.tensor([0, 1, 1])
    partners = same_pose_partners(toy, list(range(7)))
    torch.manual_seed(0)
    code, target = mixed_exposures(toy, frames, lambda f, c: energy_image(toy, f), cams, partners, 1.0,
                                   (0.6, 1.4), channel_dim=-1)  # fmt: skip
    # Consistency: whatever the draws, the target is the energy of the mixed code, channel by channel.
    torch.testing.assert_close(target, torch.ones_like(target) * code.view(3, -1, 3).sum(1)[:, None, None])
    lit = [set(torch.nonzero(code[i].view(-1, 3).sum(1)).flatten().tolist()) for i in range(3)]
    both = set(torch.nonzero(toy.light_codes[[1, 2]].view(2, -1, 3).sum((0, 2))).flatten().tolist())
    assert lit[0] == lit[1] == both, "frames 1 and 2 are mixed with each other (probability 1)"
    single = set(torch.nonzero(toy.light_codes[4].view(-1, 3).sum(1)).flatten().tolist())
    assert lit[2] == single, "frame 4 has no partner"
    assert not torch.allclose(code[0], toy.light_codes[1] + toy.light_codes[2]), "each exposure gets its own colour"


def test_without_augmentation_nothing_is_mixed_or_scaled(toy):
    partners = same_pose_partners(toy, list(range(7)))
    frames, cams = torch.tensor([1, 2]), torch.tensor([0, 0])
    code, target = mixed_exposures(toy, frames, lambda f, c: toy.images[f, c], cams, partners, 1.0, None,
                                   channel_dim=-1)  # fmt: skip
    torch.testing.assert_close(code, toy.light_codes[[1, 2]])
    torch.testing.assert_close(target, toy.images[[1, 2], [0, 0]].float())
    code, target = mixed_exposures(toy, frames, lambda f, c: toy.images[f, c], cams, partners, 0.0, (1.0, 1.0),
                                   channel_dim=-1)  # fmt: skip
    torch.testing.assert_close(code, toy.light_codes[[1, 2]])  # probability 0: colour scale only (here x1)


def test_texture_layout_scales_the_channel_axis(toy):
    texture = torch.stack([torch.full((3, 3), v) for v in (1.0, 2.0, 3.0)])  # [3,T,T]
    torch.manual_seed(1)
    code, target = mixed_exposures(toy, torch.tensor([4]), lambda f, c: texture, torch.tensor([0]), {}, 0.5,
                                   (0.5, 1.5), channel_dim=0)  # fmt: skip
    scale = code[0].view(-1, 3).sum(0) / toy.light_codes[4].view(-1, 3).sum(0)
    torch.testing.assert_close(target[0, :, 0, 0], torch.tensor([1.0, 2.0, 3.0]) * scale)
