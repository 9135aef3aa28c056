"""The lighting model G (docs/method.md, Eq. 2-3): per-texel gain and bias on the fully-lit texture.

    T_v = T̂_v ⊙ g_v + b_v                  (Eq. 2, `relight`)
    g_v, b_v = G(l, h_v, T̂_v; φ)           (Eq. 3, `LightingModel.forward`)

G relights the DAM's fully-lit texture T̂_v. Its inputs: the lighting code l (150 = 50 light groups x RGB; a
light-stage pattern in training, fitted by Algorithm 1 in the wild), h_v = (head rotation r, view vector
v_v) and T̂_v itself; its outputs: a gain map g and a bias map b at the texture's size. φ are its weights,
pre-trained on the light stage (train/lighting_trainer.py) and adapted per video (fit/step2.py).

Layout (supplement Fig. 10; paper sizes for input_texture_size = 256):
  l (150) and h_v (6) -> two MLPs -> 256 each -> concat -> FC -> [C, g0, g0] -> conv -> four transposed convs
  -> lighting feature at input/16;  T̂_v resized to input² -> four (conv + down-sample) -> texture feature at
  input/16;  concat -> two branches of two transposed convs (x4 each) -> gain, bias at input² -> bilinear to
  the texture size. With input 256 the FC grid is 1x1 and each transposed conv doubles (1 -> 16). Smaller
  inputs keep the four transposed convs but the first ones that would overshoot use stride 1.
The last layer of each branch starts at zero, so an untrained G is the identity relighting of the fully-lit
code (g = 1, b = 0) and the gain stays non-negative. The bias is predicted in units of `bias_scale`.

Energy normalisation (`energy_normalised`, on by default and in every preset; a departure from the paper):
light transport is linear in the emitted power, and l says how much power is on (all ones = fully lit).
With s_c(l) = mean over groups of l[g, c] (`light_energy`: 1 for the fully-lit code, 1/50 for one white
group), the branches predict a gain g' and bias b' *per unit of light energy* from the energy-free pattern
p = l / Σ_g |l[g, c]| (`light_pattern`), and G returns

    g = s(l) ⊙ g',  b = s(l) ⊙ b'          (Eq. 2 and every caller unchanged)

so scaling a non-negative l by a positive factor per colour channel scales g and b by exactly that factor.
Σ|l|, not Σ l, because a fitted code may turn entries negative; at l = 0 (the start of Algorithm 1) the relit
texture is black, and the gradient w.r.t. l moves it towards a uniform, fully-lit-like code. Why it exists
and what it measured: docs/method.md, "Energy-normalised G". Packages written before it was the default
lack the key and load as not normalised (avatar/format.py).

`gain_activation` maps the gain branch's output x to g: "softplus", g = softplus(x + log(e - 1)) (every
package so far), or "abs", g = |1 + x| (an experiment: `--experiment gain_activation=abs`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dlatrack_engine.models.blocks import ConvDownsample, config_from_dict, leaky, log2_int, mlp

GAIN_OFFSET = math.log(math.e - 1.0)  # softplus(GAIN_OFFSET) == 1
GAIN_ACTIVATIONS = ("softplus", "abs")
# Σ_g |l[g, c]| below this is treated as this when dividing out the energy: l = 0 (Algorithm 1's start) must
# give a finite pattern. One group at the colour augmentation's lowest scale sums to 0.6, far above it.
ENERGY_FLOOR = 1e-3


def gain_from_branch(x: torch.Tensor, activation: str) -> torch.Tensor:
    """The gain map from the gain branch's output; both activations give g = 1 at x = 0."""
    if activation == "abs":
        return (1.0 + x).abs()
    return F.softplus(x + GAIN_OFFSET)


def light_energy(light_code: torch.Tensor) -> torch.Tensor:
    """s(l) [B,3]: the mean over light groups of each colour channel of l [B, groups x RGB] (1 = fully lit)."""
    return light_code.view(light_code.shape[0], -1, 3).mean(dim=1)


def light_pattern(light_code: torch.Tensor) -> torch.Tensor:
    """The energy-free pattern [B, groups x RGB]: each group's share of its channel's total Σ_g |l[g, c]|."""
    groups = light_code.view(light_code.shape[0], -1, 3)
    total = groups.abs().sum(dim=1, keepdim=True)
    return (groups / total.clamp_min(ENERGY_FLOOR)).flatten(1)


@dataclass(kw_only=True)
class LightingConfig:
    """Sizes of G. `light_channels`: FC grid channels then the output of each of the four transposed convs;
    `texture_channels`: output of each of the four texture-encoder stages."""

    texture_size: int
    code_size: int = 150
    pose_size: int = 6
    input_texture_size: int = 256
    mlp_width: int = 256
    light_channels: tuple[int, ...] = (256, 128, 64, 64, 32)
    texture_channels: tuple[int, ...] = (32, 64, 128, 128)
    branch_channels: int = 64
    # The bias map is predicted in units of `bias_scale`: linear radiance of single light groups is ~1e-2,
    # so at scale 1 every Adam step (~lr) would move the bias by the size of the signal itself.
    bias_scale: float = 1.0
    gain_activation: str = "softplus"  # "softplus" or "abs" (see the module docstring)
    energy_normalised: bool = True  # g, b per unit of light energy (see the module docstring)

    def __post_init__(self) -> None:
        log2_int(self.texture_size, "LightingConfig.texture_size")
        if log2_int(self.input_texture_size, "LightingConfig.input_texture_size") < 4:
            raise ValueError(f"LightingConfig.input_texture_size must be >= 16, got {self.input_texture_size}")
        if len(self.light_channels) != 5:
            raise ValueError(
                f"LightingConfig.light_channels needs 5 widths (FC + 4 deconvs), got {self.light_channels}"
            )
        if len(self.texture_channels) != 4:
            raise ValueError(f"LightingConfig.texture_channels needs 4 widths, got {self.texture_channels}")
        if self.code_size % 3:
            raise ValueError(
                f"LightingConfig.code_size must be light groups x RGB (a multiple of 3), got {self.code_size}"
            )
        if self.gain_activation not in GAIN_ACTIVATIONS:
            raise ValueError(
                f"LightingConfig.gain_activation must be one of {GAIN_ACTIVATIONS}, got {self.gain_activation!r}"
            )

    @property
    def feature_size(self) -> int:
        return self.input_texture_size // 16

    @property
    def light_grid(self) -> int:
        return max(1, self.feature_size // 16)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LightingConfig:
        return config_from_dict(cls, data, "lighting config")


def _branch(cin: int, hidden: int) -> nn.Sequential:
    """Two transposed convs, x4 each (kernel 8 = 2 x stride: no checkerboard), the last one zero-initialised."""
    last = nn.ConvTranspose2d(hidden, 3, 8, stride=4, padding=2)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.ConvTranspose2d(cin, hidden, 8, stride=4, padding=2), leaky(), last)


class LightingModel(nn.Module):
    """G of Eq. 3: (light_code [B,150], head_view [B,6] = (r, v_v), fully-lit texture [B,3,T,T]) -> gain, bias."""

    def __init__(self, cfg: LightingConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.mlp_width
        self.light_mlp = mlp([cfg.code_size, w, w])
        self.pose_mlp = mlp([cfg.pose_size, w, w])
        lc = cfg.light_channels
        self.fc = nn.Sequential(nn.Linear(2 * w, lc[0] * cfg.light_grid**2), leaky())
        self.conv = nn.Sequential(nn.Conv2d(lc[0], lc[0], 3, padding=1), leaky())
        doublings = log2_int(cfg.feature_size // cfg.light_grid, "feature/grid ratio")
        deconvs: list[nn.Module] = []
        for i in range(4):
            if i < doublings:
                deconvs.append(nn.ConvTranspose2d(lc[i], lc[i + 1], 4, stride=2, padding=1))
            else:
                deconvs.append(nn.ConvTranspose2d(lc[i], lc[i + 1], 3, stride=1, padding=1))
            deconvs.append(leaky())
        self.deconvs = nn.Sequential(*deconvs)
        stages, cin = [], 3
        for cout in cfg.texture_channels:
            stages.append(ConvDownsample(cin, cout))
            cin = cout
        self.texture_encoder = nn.Sequential(*stages)
        joint = lc[-1] + cfg.texture_channels[-1]
        self.gain_branch = _branch(joint, cfg.branch_channels)
        self.bias_branch = _branch(joint, cfg.branch_channels)
        # Convolution weights in channels-last layout: oneDNN's NHWC kernels run G's forward + backward about
        # 20 % faster on a CPU (8 frames at 128²: 47 -> 39 ms), with the same maps to float rounding. Savers
        # and hashes take `.contiguous()` copies, so packages do not depend on it (bench/RESULTS.md, issue 20).
        self.to(memory_format=torch.channels_last)

    def forward(
        self, light_code: torch.Tensor, head_view: torch.Tensor, texture: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 3. Returns gain, bias [B,3,T,T] at the texture's size T (= cfg.texture_size)."""
        cfg = self.cfg
        batch = texture.shape[0]
        expected = {
            "light_code": (light_code, (batch, cfg.code_size)),
            "head_view": (head_view, (batch, cfg.pose_size)),
            "texture": (texture, (batch, 3, cfg.texture_size, cfg.texture_size)),
        }
        for name, (x, shape) in expected.items():
            if tuple(x.shape) != shape:
                raise ValueError(f"LightingModel: {name} must be {list(shape)}, got {list(x.shape)}")
        code = light_pattern(light_code) if cfg.energy_normalised else light_code
        light = torch.cat([self.light_mlp(code), self.pose_mlp(head_view)], dim=1)
        grid = self.fc(light).view(batch, -1, cfg.light_grid, cfg.light_grid)
        light_feat = self.deconvs(self.conv(grid))
        small = texture
        if cfg.input_texture_size != cfg.texture_size:
            small = F.interpolate(
                texture, size=(cfg.input_texture_size,) * 2, mode="bilinear", align_corners=False, antialias=True
            )
        tex_feat = self.texture_encoder(small)
        joint = torch.cat([light_feat, tex_feat], dim=1)
        gain = gain_from_branch(self.gain_branch(joint), cfg.gain_activation)
        bias = self.bias_branch(joint) * cfg.bias_scale
        if cfg.energy_normalised:
            energy = light_energy(light_code)[:, :, None, None]
            gain, bias = energy * gain, energy * bias  # per unit of light energy -> absolute
        if cfg.input_texture_size != cfg.texture_size:
            gain = F.interpolate(gain, size=(cfg.texture_size,) * 2, mode="bilinear", align_corners=False)
            bias = F.interpolate(bias, size=(cfg.texture_size,) * 2, mode="bilinear", align_corners=False)
        return gain, bias


def relight(texture: torch.Tensor, gain: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """Eq. 2: the relit texture T_v = T̂_v ⊙ g_v + b_v (all [B,3,T,T])."""
    return texture * gain + bias


def head_view_vector(rotation: torch.Tensor, view: torch.Tensor) -> torch.Tensor:
    """h_v of Eq. 3: concatenation of the head rotation r (axis-angle [B,3]) and the view vector v_v [B,3]."""
    return torch.cat([rotation, view], dim=-1)
