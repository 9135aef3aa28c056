"""Deep Appearance Model (Lombardi et al. 2018), Multiface layout: a conditional VAE over mesh + texture.

The decoder D(z, v) -> (vertices, view-dependent fully-lit texture) is Eq. 1 (docs/method.md); registration
only ever uses the decoder, training uses both halves. Sizes are configuration (the sample subject is small,
a real subject is ~7k vertices, 1024² texture, z = 256). Normalisation statistics are buffers, so they are
saved and loaded with the weights and a package can never pair a decoder with the wrong statistics.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from dlatrack_engine.models.blocks import ConvDownsample, ConvUpsample, config_from_dict, log2_int, mlp


@dataclass
class DAMConfig:
    """Sizes of a DAM. `base_grid` is the spatial size where the texture decoder starts; channel widths
    halve with every doubling of resolution from `max_channels` down to `min_channels`."""

    num_vertices: int
    texture_size: int
    latent_size: int = 128
    mesh_hidden: int = 256
    view_features: int = 8
    base_grid: int = 8
    max_channels: int = 128
    min_channels: int = 16
    untied_bias: bool = True

    def __post_init__(self) -> None:
        if self.num_vertices < 1:
            raise ValueError(f"DAMConfig.num_vertices must be >= 1, got {self.num_vertices}")
        log2_int(self.base_grid, "DAMConfig.base_grid")
        levels = log2_int(self.texture_size, "DAMConfig.texture_size") - log2_int(self.base_grid, "base_grid")
        if levels < 1:
            raise ValueError(
                f"DAMConfig.texture_size ({self.texture_size}) must be larger than base_grid ({self.base_grid})"
            )

    @property
    def levels(self) -> int:
        """Number of x2 up-sampling stages between the base grid and the texture."""
        return log2_int(self.texture_size, "texture_size") - log2_int(self.base_grid, "base_grid")

    def channels_at(self, size: int) -> int:
        scale = size // self.base_grid
        return max(self.min_channels, self.max_channels // scale)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DAMConfig:
        return config_from_dict(cls, data, "DAM config")


class DAMEncoder(nn.Module):
    """(vertices, view-averaged texture), both normalised -> (mu, logvar) of z."""

    def __init__(self, cfg: DAMConfig) -> None:
        super().__init__()
        self.mesh = mlp([cfg.num_vertices * 3, cfg.mesh_hidden])
        stages, size = [], cfg.texture_size
        cin = 3
        while size > cfg.base_grid:
            cout = cfg.channels_at(size // 2)
            stages.append(ConvDownsample(cin, cout))
            cin, size = cout, size // 2
        self.texture = nn.Sequential(*stages)
        self.texture_fc = mlp([cin * cfg.base_grid**2, cfg.mesh_hidden])
        self.head = nn.Linear(2 * cfg.mesh_hidden, 2 * cfg.latent_size)
        # Start with small log-variances so early KL does not swamp reconstruction.
        nn.init.zeros_(self.head.bias)
        self.head.weight.data.mul_(0.1)
        self.latent_size = cfg.latent_size

    def forward(self, vertices_n: torch.Tensor, texture_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mesh_feat = self.mesh(vertices_n.flatten(1))
        tex_feat = self.texture_fc(self.texture(texture_n).flatten(1))
        out = self.head(torch.cat([mesh_feat, tex_feat], dim=1))
        return out[:, : self.latent_size], out[:, self.latent_size :]


class DAMDecoder(nn.Module):
    """z -> normalised vertex offsets; (z, view) -> normalised texture (view-dependent, Eq. 1)."""

    def __init__(self, cfg: DAMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mesh = nn.Sequential(
            mlp([cfg.latent_size, cfg.mesh_hidden]), nn.Linear(cfg.mesh_hidden, cfg.num_vertices * 3)
        )
        self.view = mlp([3, cfg.view_features])
        c0 = cfg.channels_at(cfg.base_grid)
        self.texture_fc = mlp([cfg.latent_size + cfg.view_features, c0 * cfg.base_grid**2])
        stages, size, cin = [], cfg.base_grid, c0
        for level in range(cfg.levels):
            size *= 2
            last = level == cfg.levels - 1
            cout = 3 if last else cfg.channels_at(size)
            stages.append(ConvUpsample(cin, cout, size, cfg.untied_bias, activation=not last))
            cin = cout
        self.texture = nn.Sequential(*stages)

    def forward(self, z: torch.Tensor, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cfg = self.cfg
        vertices_n = self.mesh(z).view(-1, cfg.num_vertices, 3)
        feat = self.texture_fc(torch.cat([z, self.view(view)], dim=1))
        c0 = cfg.channels_at(cfg.base_grid)
        texture_n = self.texture(feat.view(-1, c0, cfg.base_grid, cfg.base_grid))
        return vertices_n, texture_n


class DAM(nn.Module):
    """The person-specific appearance model; `decode` is D of Eq. 1 in metres / linear RGB."""

    def __init__(self, cfg: DAMConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = DAMEncoder(cfg)
        self.decoder = DAMDecoder(cfg)
        v, t = cfg.num_vertices, cfg.texture_size
        self.register_buffer("mean_vertices", torch.zeros(v, 3))
        self.register_buffer("vertex_std", torch.ones(1))
        self.register_buffer("mean_texture", torch.zeros(3, t, t))
        self.register_buffer("texture_std", torch.ones(1))

    @torch.no_grad()
    def set_normalisation(
        self, mean_vertices: torch.Tensor, vertex_std: float, mean_texture: torch.Tensor, texture_std: float
    ) -> None:
        """Store the training set's statistics (computed once by the trainer, then saved with the weights)."""
        cfg = self.cfg
        if tuple(mean_vertices.shape) != (cfg.num_vertices, 3):
            raise ValueError(f"mean_vertices: expected [{cfg.num_vertices}, 3], got {list(mean_vertices.shape)}")
        if tuple(mean_texture.shape) != (3, cfg.texture_size, cfg.texture_size):
            raise ValueError(
                f"mean_texture: expected [3, {cfg.texture_size}, {cfg.texture_size}], got {list(mean_texture.shape)}"
            )
        if not (vertex_std > 0 and texture_std > 0):
            raise ValueError(f"normalisation std must be > 0, got vertex {vertex_std}, texture {texture_std}")
        self.mean_vertices.copy_(mean_vertices)
        self.vertex_std.fill_(float(vertex_std))
        self.mean_texture.copy_(mean_texture)
        self.texture_std.fill_(float(texture_std))

    def _check(self, name: str, x: torch.Tensor, shape: tuple) -> None:
        if x.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, x.shape, strict=True)):
            want = ", ".join("B" if s is None else str(s) for s in shape)
            raise ValueError(f"DAM: {name} must be [{want}], got {list(x.shape)}")

    def encode(self, vertices: torch.Tensor, texture: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """vertices [B,V,3] (head frame, m), texture [B,3,T,T] (view-averaged, linear) -> (mu, logvar) [B,Z]."""
        cfg = self.cfg
        self._check("vertices", vertices, (None, cfg.num_vertices, 3))
        self._check("texture", texture, (None, 3, cfg.texture_size, cfg.texture_size))
        vertices_n = (vertices - self.mean_vertices) / self.vertex_std
        texture_n = (texture - self.mean_texture) / self.texture_std
        return self.encoder(vertices_n, texture_n)

    def decode(self, z: torch.Tensor, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 1: z [B,Z], view [B,3] (unit head->camera vector, head frame) ->
        (vertices [B,V,3] head frame metres, texture [B,3,T,T] linear RGB, fully lit, for that view)."""
        self._check("z", z, (None, self.cfg.latent_size))
        self._check("view", view, (z.shape[0], 3))
        vertices_n, texture_n = self.decoder(z, view)
        vertices = self.mean_vertices + vertices_n * self.vertex_std
        texture = self.mean_texture + texture_n * self.texture_std
        return vertices, texture

    def forward(
        self, vertices: torch.Tensor, texture: torch.Tensor, view: torch.Tensor, sample: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Encode, reparameterise (when `sample`), decode: returns (vertices, texture, mu, logvar)."""
        mu, logvar = self.encode(vertices, texture)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar) if sample else mu
        out_vertices, out_texture = self.decode(z, view)
        return out_vertices, out_texture, mu, logvar


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)), mean over the batch (the VAE prior of the DAM)."""
    return 0.5 * torch.mean(torch.sum(mu.pow(2) + logvar.exp() - 1.0 - logvar, dim=1))
