"""Texture (UV) space of a topology: which surface point every texel shows.

The mesh is rasterised once in UV space by the project's renderer (positions = UV coordinates), giving
each covered texel a triangle and barycentric weights. Any per-vertex quantity (3-D positions, normals) then
becomes a texture-layout map by a gather and a weighted sum, with gradients to the vertices — used to unwrap
light-stage images into textures and to give the SH baseline its per-texel normals.

Texture layout (docs/conventions.md): row 0 = top of the image = v near 1, so texel (row i, col j) shows
u = (j + 0.5) / T, v = 1 - (i + 0.5) / T.
"""

from __future__ import annotations

import torch

from dlatrack_engine.geometry import vertex_normals
from dlatrack_engine.render.mesh_renderer import MeshRenderer


class UVAtlas:
    """Texel -> (triangle, barycentrics) map for one topology at texture size T, from the renderer's
    UV-space rasterisation (`MeshRenderer.uv_rast`)."""

    def __init__(self, renderer: MeshRenderer, texture_size: int) -> None:
        self.texture_size = texture_size
        self.faces = renderer.faces.long()
        device = renderer.device
        with torch.no_grad():
            rast = renderer.uv_rast(texture_size)[0]
        tri = rast[..., 3].reshape(-1).long() - 1
        self.texel_index = torch.nonzero(tri >= 0).squeeze(1)  # [M] flat texel ids
        u = rast[..., 0].reshape(-1)[self.texel_index].float()
        v = rast[..., 1].reshape(-1)[self.texel_index].float()
        self.bary = torch.stack([u, v, 1.0 - u - v], dim=-1)  # [M,3]
        self.corners = self.faces[tri[self.texel_index]]  # [M,3] vertex ids
        mask = torch.zeros(texture_size * texture_size, device=device)
        mask[self.texel_index] = 1.0
        self.mask = mask.view(1, 1, texture_size, texture_size)  # texels covered by the UV layout

    @classmethod
    def from_topology(cls, topology, texture_size: int, device: torch.device | str = "cpu") -> UVAtlas:
        """Build from an `avatar.format.Topology` (numpy) or `avatar.runtime.TopologyTensors`."""
        from dlatrack_engine.render.mesh_renderer import MeshRenderer

        renderer = MeshRenderer(topology.faces, topology.uv_faces, topology.uvs, device)
        return cls(renderer, texture_size)

    def to_texture(self, attr: torch.Tensor) -> torch.Tensor:
        """Per-vertex attributes [B,V,C] -> texture-layout map [B,C,T,T] (zeros outside the UV layout)."""
        batch, _, channels = attr.shape
        values = (attr[:, self.corners] * self.bary[None, :, :, None]).sum(dim=2)  # [B,M,C]
        size = self.texture_size
        out = attr.new_zeros(batch, size * size, channels)
        out = out.index_copy(1, self.texel_index, values)
        return out.permute(0, 2, 1).reshape(batch, channels, size, size)

    def normals(self, vertices: torch.Tensor, rotation: torch.Tensor | None = None) -> torch.Tensor:
        """Unit surface normals per texel [B,3,T,T] of `vertices` [B,V,3], rotated by `rotation` [B,3,3]
        (e.g. the head pose, to express them in the frame the lighting is fixed in); zeros off the layout."""
        n = vertex_normals(vertices, self.faces)
        if rotation is not None:
            n = n @ rotation.transpose(1, 2)
        n_uv = self.to_texture(n)
        return n_uv / n_uv.norm(dim=1, keepdim=True).clamp_min(1e-8)
