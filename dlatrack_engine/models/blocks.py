"""Small named building blocks shared by the DAM and the lighting model (Multiface-style).

Each block's sizes come from its arguments; nothing here knows about faces.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

LEAKY_SLOPE = 0.2


def leaky() -> nn.LeakyReLU:
    return nn.LeakyReLU(LEAKY_SLOPE)


def log2_int(value: int, what: str) -> int:
    """log2 of a power of two, or a ValueError naming `what` (sizes are config, so say which one)."""
    if value < 1 or value & (value - 1):
        raise ValueError(f"{what} must be a power of two, got {value}")
    return int(math.log2(value))


class UntiedBias(nn.Module):
    """A learnt bias per channel *and pixel*: lets a decoder place fine texture detail at fixed UV spots
    (Lombardi et al. 2018 / Multiface use it in every texture layer)."""

    def __init__(self, channels: int, size: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, size, size))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bias


class ConvDownsample(nn.Module):
    """conv 3x3 -> LeakyReLU -> 2x average-pool: halves the resolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)
        self.act = leaky()
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.act(self.conv(x)))


class ConvUpsample(nn.Module):
    """Transposed conv (k4, s2) doubling the resolution, optional untied bias, optional LeakyReLU."""

    def __init__(self, cin: int, cout: int, out_size: int, untied_bias: bool, activation: bool = True) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=not untied_bias)
        self.bias = UntiedBias(cout, out_size) if untied_bias else nn.Identity()
        self.act = leaky() if activation else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bias(self.deconv(x)))


def mlp(sizes: list[int], final_activation: bool = True) -> nn.Sequential:
    """Linear layers with LeakyReLU between them (and after the last one when `final_activation`)."""
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(itertools.pairwise(sizes)):
        layers.append(nn.Linear(cin, cout))
        if final_activation or i < len(sizes) - 2:
            layers.append(leaky())
    return nn.Sequential(*layers)


def config_from_dict(cls, data: dict, what: str):
    """Build dataclass `cls` from `data`, naming unknown and missing fields (configs live in avatar.json,
    so a typo there must say which key is wrong rather than fail with a TypeError)."""
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    required = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }
    missing = sorted(required - set(data))
    problems = []
    if unknown:
        problems.append(f"unknown field(s) {unknown}")
    if missing:
        problems.append(f"missing required field(s) {missing}")
    if problems:
        raise ValueError(f"{what}: {'; '.join(problems)} (known fields: {sorted(fields)})")
    kwargs = {}
    for name, value in data.items():
        default = fields[name].default
        # JSON turns tuples into lists; keep the dataclass's declared tuple type.
        kwargs[name] = tuple(value) if isinstance(default, tuple) and isinstance(value, list) else value
    return cls(**kwargs)
