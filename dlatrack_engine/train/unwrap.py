"""Unwrapping light-stage images into UV textures (the DAM's texture targets) and their weights.

`MeshRenderer.unwrap` does the geometry (project each texel, z-buffer visibility, bilinear sampling); this
adds what training needs on top: the foreground mask (sampled with the image as a 4th channel) and a
cosine weight between surface normal and view ray, so grazing texels count little when views are averaged.
`UnwrappedFrames` holds a set of frames unwrapped once in every camera: the DAM's targets and encoder
inputs, G's texture-space warm-up targets, the evaluation's references.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from dlatrack_engine.models.uv_space import UVAtlas
from dlatrack_engine.render.camera import Camera
from dlatrack_engine.render.mesh_renderer import MeshRenderer
from dlatrack_engine.train.data import LightStageData, Split


@torch.no_grad()
def unwrap_images(
    renderer: MeshRenderer,
    atlas: UVAtlas,
    images: torch.Tensor,
    masks: torch.Tensor,
    vertices_world: torch.Tensor,
    camera: Camera,
    min_cosine: float = 0.1,
) -> tuple[torch.Tensor, torch.Tensor]:
    """images [B,H,W,3], masks [B,H,W,1], vertices_world [B,V,3], a batched camera ->
    (texture [B,3,T,T], weight [B,1,T,T] in [0,1], zero where the texel was not seen)."""
    size = atlas.texture_size
    stacked = torch.cat([images.float(), masks.float()], dim=-1)
    sampled, visible = renderer.unwrap(stacked, vertices_world.float(), camera, size)
    texture, fg = sampled[:, :3], sampled[:, 3:]
    points, _ = renderer.texel_positions(vertices_world.float(), size)  # [B,T,T,3]
    to_cam = camera.center()[:, None, None, :] - points
    normals = atlas.normals(vertices_world.float())  # [B,3,T,T]
    cosine = (normals.permute(0, 2, 3, 1) * to_cam).sum(-1) / to_cam.norm(dim=-1).clamp_min(1e-9)
    cosine = cosine[:, None]
    keep = (visible > 0) & (fg > 0.99) & (cosine > min_cosine) & (atlas.mask > 0)
    weight = torch.where(keep, cosine, torch.zeros_like(cosine))
    return texture * keep, weight


def average_texture(
    textures: torch.Tensor, weights: torch.Tensor, fallback: torch.Tensor | None = None
) -> torch.Tensor:
    """Weighted mean over views: textures [N,3,T,T], weights [N,1,T,T] -> [3,T,T]; unseen texels take
    `fallback` [3,T,T] (default 0)."""
    total = weights.sum(0)
    mean = (textures * weights).sum(0) / total.clamp_min(1e-6)
    if fallback is None:
        fallback = torch.zeros_like(mean)
    return torch.where(total > 1e-6, mean, fallback)


@dataclass
class UnwrappedFrames:
    """Unwrapped textures of the fully-lit frames: `frames` (dataset indices) x all cameras."""

    frames: list[int]
    textures: torch.Tensor  # [Nf,C,3,T,T] float16
    weights: torch.Tensor  # [Nf,C,1,T,T] float16
    average: torch.Tensor  # [Nf,3,T,T] view-averaged over the training cameras (encoder input)

    def row(self, frame: int) -> int:
        return self.frames.index(frame)


@torch.no_grad()
def unwrap_frames(
    data: LightStageData,
    split: Split,
    frames: list[int],
    texture_size: int,
    device: torch.device,
    renderer: MeshRenderer,
) -> UnwrappedFrames:
    """Unwrap `frames` in every camera (held-out ones too: evaluation compares against them)."""
    atlas = UVAtlas(renderer, texture_size)
    cams = torch.arange(data.num_cameras)
    train_cams = split.train_cameras(data)
    textures, weights, averages = [], [], []
    for f in tqdm(frames, desc="unwrap", leave=False, disable=len(frames) < 4):
        idx = torch.full((data.num_cameras,), f)
        world = data.world_vertices(data.vertices[idx], idx).to(device)
        tex, w = unwrap_images(
            renderer,
            atlas,
            data.images[f].to(device),
            data.masks[f].to(device),
            world,
            data.camera(cams).to(device),
        )
        textures.append(tex.half().cpu())
        weights.append(w.half().cpu())
        averages.append(average_texture(tex[train_cams], w[train_cams]).cpu())
    return UnwrappedFrames(list(frames), torch.stack(textures), torch.stack(weights), torch.stack(averages))


def unwrap_full_frames(
    data: LightStageData, split: Split, texture_size: int, device: torch.device, renderer: MeshRenderer
) -> UnwrappedFrames:
    """Unwrap every fully-lit frame (the DAM's targets and the encoder's inputs)."""
    frames = data.full_frames()
    if not frames:
        raise ValueError(f"{data.root}: no fully-lit frames to train the DAM on")
    return unwrap_frames(data, split, frames, texture_size, device, renderer)
