"""Pattern mixing: new lighting patterns for training G, made exactly from frames captured at the same instant.

Light transport is linear in the emitted power, so the image of a head lit by patterns A and B together is
the sum of its images under A and under B, provided the head did not move between them. The paper's colour
augmentation (docs/method.md, Eq. 4-5: each light group's RGB scaled by a random factor, the code l scaled the same
way) is one use of that linearity; mixing is the other. For a training sample of a pattern frame, every
other training pattern frame with the *same* mesh and head pose is added with probability `probability`,
each exposure with its own random RGB scale s_i, giving

    I = Σ_i s_i ⊙ I_i,   l = Σ_i s_i ⊙ l_i

— a pattern (and colouring) that was never captured, with an exact target. Why: G has to learn what each of
the 50 groups does from a limited number of captured patterns; trained on the captured codes only, it
reproduces those and extrapolates poorly to new combinations (bench/RESULTS.md). The sample light stage
renders several patterns per time step with the head held still, so each step yields up to 2^k − 1
combinations of its k training patterns. A real capture whose frames all differ in pose gets no partners,
and training reduces to the paper's per-sample colour augmentation.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from dlatrack_engine.train.data import LightStageData, pose_key


def same_pose_partners(data: LightStageData, frames: list[int]) -> dict[int, list[int]]:
    """For each pattern ("group") frame in `frames`, the other pattern frames in `frames` whose mesh and
    head pose are bit-identical (captured at the same instant); frames without partners are left out."""
    by_pose: dict[bytes, list[int]] = {}
    for f in frames:
        if data.kinds[f] != "group":
            continue
        by_pose.setdefault(pose_key(data, f), []).append(f)
    return {f: [p for p in same if p != f] for same in by_pose.values() if len(same) > 1 for f in same}


def mixed_exposures(
    data: LightStageData,
    frames: torch.Tensor,
    load: Callable[[int, int], torch.Tensor],
    cams: torch.Tensor,
    partners: dict[int, list[int]],
    probability: float,
    scale_range: tuple[float, float] | None,
    channel_dim: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Light codes [B,150] and targets (stacked float `load(member, camera)`, RGB along `channel_dim`) of a
    batch, each sample the sum over itself and its drawn partners of s_i ⊙ (l_i, I_i); `scale_range` None
    (no augmentation): s_i = 1 and no partners."""
    codes, targets = [], []
    for f, c in zip(frames.tolist(), cams.tolist(), strict=True):
        members = [f]
        if scale_range is not None:
            members += [p for p in partners.get(f, []) if float(torch.rand(())) < probability]
        code, target = 0.0, 0.0
        for member in members:
            scale = torch.ones(3)
            if scale_range is not None:
                low, high = scale_range
                scale = low + (high - low) * torch.rand(3)
            code = code + (data.light_codes[member].view(-1, 3) * scale).flatten()
            target = target + colour_scaled(load(member, c), scale, channel_dim)
        codes.append(code)
        targets.append(target)
    return torch.stack(codes), torch.stack(targets)


def colour_scaled(exposure: torch.Tensor, scale: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """`exposure` (float) times a per-channel scale [3] along `channel_dim`."""
    shape = [1] * exposure.dim()
    shape[channel_dim] = 3
    return exposure.float() * scale.to(exposure.device).view(shape)
