"""MeshRenderer: textured-mesh rendering, vertex visibility and camera-to-UV unwrapping on one backend.

This is the layer models and fitting use; it owns the two conventions that the raw ops leave open
(docs/conventions.md): model textures are [B, 3, T, T] while the ops take [B, T, T, C], and UVs are
Blender/OpenGL (v up) while texture rows start at the top, so UVs are sampled at (u, 1 - v) here and only here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlatrack_engine.geometry import vertex_normals
from dlatrack_engine.render.backend import RasterBackend, get_backend
from dlatrack_engine.render.camera import Camera, clip_from_camera, project


@dataclass
class RenderOutput:
    """image [B, H, W, 3] linear RGB; mask [B, H, W, 1] antialiased coverage in [0, 1]; rast [B, H, W, 4];
    pos_clip [B, V, 4]; depth [B, H, W, 1] camera-frame z (0 where empty); uv [B, H, W, 2] texture coords."""

    image: torch.Tensor
    mask: torch.Tensor
    rast: torch.Tensor
    pos_clip: torch.Tensor
    depth: torch.Tensor
    uv: torch.Tensor | None = None


def _as_tensor(a: np.ndarray | torch.Tensor, name: str, dtype: torch.dtype, device: torch.device,
               tail: tuple[int, ...]) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).to(device=device, dtype=dtype)
    if t.dim() != 1 + len(tail) or tuple(t.shape[1:]) != tail:
        raise ValueError(f"MeshRenderer: {name} must be [N, {', '.join(map(str, tail))}], got {tuple(t.shape)}")
    return t


class MeshRenderer:
    """Renders one topology (faces, uv_faces, uvs) on `device` with a `RasterBackend`.

    `near`/`far` bound the depth range in metres; `antialias` enables silhouette antialiasing (and with it
    silhouette gradients) in `render`.
    """

    def __init__(self, faces: np.ndarray | torch.Tensor, uv_faces: np.ndarray | torch.Tensor,
                 uvs: np.ndarray | torch.Tensor, device: torch.device | str,
                 backend: RasterBackend | str | None = None, near: float = 0.01, far: float = 10.0,
                 antialias: bool = True) -> None:
        self.device = torch.device(device)
        self.faces = _as_tensor(faces, "faces", torch.int32, self.device, (3,)).contiguous()
        self.uv_faces = _as_tensor(uv_faces, "uv_faces", torch.int32, self.device, (3,)).contiguous()
        uvs_t = _as_tensor(uvs, "uvs", torch.float32, self.device, (2,))
        if self.uv_faces.shape[0] != self.faces.shape[0]:
            raise ValueError(f"MeshRenderer: uv_faces has {self.uv_faces.shape[0]} rows, faces has "
                             f"{self.faces.shape[0]}; they must match face for face")
        if self.uv_faces.numel() and int(self.uv_faces.max()) >= uvs_t.shape[0]:
            raise ValueError(f"MeshRenderer: uv_faces index {int(self.uv_faces.max())} is out of range for "
                             f"{uvs_t.shape[0]} uvs")
        self.uvs = uvs_t
        self.uvs_tex = torch.stack([uvs_t[:, 0], 1.0 - uvs_t[:, 1]], -1)  # the one (u, 1 - v) flip
        if backend is None or isinstance(backend, str):
            backend = get_backend(self.device, backend)
        self.backend = backend
        self.near, self.far = near, far
        self.antialias = antialias
        self._uv_rast: dict[int, torch.Tensor] = {}

    def clip(self, vertices: torch.Tensor, camera: Camera) -> torch.Tensor:
        """World vertices [B, V, 3] -> clip coordinates [B, V, 4] for this renderer's depth range."""
        return clip_from_camera(camera.world_to_camera(vertices), camera.K, camera.width, camera.height,
                                self.near, self.far)

    def render(self, vertices: torch.Tensor, camera: Camera, texture: torch.Tensor,
               background: torch.Tensor | None = None) -> RenderOutput:
        """Render world-space vertices [B, V, 3] with texture [B|1, 3, T, T] (linear RGB) through `camera`,
        over `background` [B, H, W, 3] (black if None). This is R in the paper's Eq. 4 and 7."""
        if texture.dim() != 4 or texture.shape[1] != 3:
            raise ValueError(f"MeshRenderer.render: texture must be [B, 3, T, T], got {tuple(texture.shape)}")
        H, W = camera.height, camera.width
        x_cam = camera.world_to_camera(vertices)
        pos = clip_from_camera(x_cam, camera.K, W, H, self.near, self.far)
        rast = self.backend.rasterize(pos, self.faces, (H, W))
        uv = self.backend.interpolate(self.uvs_tex.to(vertices.dtype)[None], rast, self.uv_faces)
        tex = texture.permute(0, 2, 3, 1).to(vertices.dtype)
        colour = self.backend.texture(tex, uv)
        covered = rast[..., 3:] > 0
        if background is None:
            background = torch.zeros_like(colour)
        image = torch.where(covered, colour, background.to(colour.dtype))
        mask = covered.to(colour.dtype)
        if self.antialias:
            # Antialiasing is linear in the channels: blend image and coverage in one pass.
            blended = self.backend.antialias(torch.cat([image, mask], -1), rast, pos, self.faces)
            image, mask = blended[..., :3], blended[..., 3:]
        depth = self.backend.interpolate(x_cam[..., 2:], rast, self.faces)
        return RenderOutput(image=image, mask=mask, rast=rast, pos_clip=pos, depth=depth, uv=uv)

    def depth_map(self, vertices: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
        """Camera-frame z-buffer [B, H, W] (0 where empty) and the rast it came from."""
        x_cam = camera.world_to_camera(vertices)
        pos = clip_from_camera(x_cam, camera.K, camera.width, camera.height, self.near, self.far)
        rast = self.backend.rasterize(pos, self.faces, (camera.height, camera.width))
        return self.backend.interpolate(x_cam[..., 2:], rast, self.faces)[..., 0], rast

    @torch.no_grad()
    def _depth_test(self, points: torch.Tensor, vertices: torch.Tensor, camera: Camera,
                    depth_tolerance: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For world points [B, N, 3] against the mesh's z-buffer: (projects onto a covered pixel,
        not behind the surface there, the triangle id at that pixel or -1), each [B, N]. The depth margin is
        `depth_tolerance` metres plus two pixels' footprint, for slanted surfaces."""
        B = points.shape[0]
        H, W = camera.height, camera.width
        zbuf, rast = self.depth_map(vertices, camera)
        uv, z = project(points, camera)
        px = torch.floor(uv[..., 0]).long()
        py = torch.floor(uv[..., 1]).long()
        inside = (px >= 0) & (px < W) & (py >= 0) & (py < H) & (z > self.near)
        batch = torch.arange(B, device=points.device)[:, None]
        flat = (batch * H + py.clamp(0, H - 1)) * W + px.clamp(0, W - 1)
        face = rast[..., 3].reshape(-1)[flat].long() - 1
        footprint = 2.0 * z / camera.K[:, 0, 0, None]
        in_front = z <= zbuf.reshape(-1)[flat] + depth_tolerance + footprint
        return inside & (face >= 0), in_front, face

    @torch.no_grad()
    def visible_vertices(self, vertices: torch.Tensor, camera: Camera,
                         depth_tolerance: float = 0.005) -> torch.Tensor:
        """[B, V] bool: vertex projects inside the image and is not occluded (used by the flow term, Eq. 8).

        A vertex is visible when the triangle at its pixel uses it, or when its depth is within
        `depth_tolerance` metres (plus two pixels' footprint) of the z-buffer there.
        """
        on_mesh, in_front, face = self._depth_test(vertices, vertices, camera, depth_tolerance)
        corners = self.faces.long()[face.clamp_min(0)]  # [B, V, 3]
        own = (corners == torch.arange(vertices.shape[1], device=vertices.device)[None, :, None]).any(-1)
        return on_mesh & (own | in_front)

    def uv_rast(self, texture_size: int) -> torch.Tensor:
        """Rasterisation of the mesh in UV space [1, T, T, 4] (texel rows top-down), cached per size."""
        if texture_size not in self._uv_rast:
            u, v = self.uvs[:, 0], self.uvs[:, 1]
            ones = torch.ones_like(u)
            # Texel row 0 is the top of the texture (v = 1): y_ndc = 1 - 2v puts it at raster row 0.
            pos = torch.stack([2.0 * u - 1.0, 1.0 - 2.0 * v, 0.0 * ones, ones], -1)[None]
            self._uv_rast[texture_size] = self.backend.rasterize(pos, self.uv_faces, (texture_size, texture_size))
        return self._uv_rast[texture_size]

    def _uv_rast_batch(self, vertices: torch.Tensor, texture_size: int) -> torch.Tensor:
        rast = self.uv_rast(texture_size)
        return rast.expand(vertices.shape[0], -1, -1, -1).to(vertices.dtype).contiguous()

    def texel_positions(self, vertices: torch.Tensor, texture_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """World position of every texel's surface point [B, T, T, 3] and texel coverage [1, T, T] bool."""
        rast = self._uv_rast_batch(vertices, texture_size)
        return self.backend.interpolate(vertices, rast, self.faces), self.uv_rast(texture_size)[..., 3] > 0

    def unwrap(self, image: torch.Tensor, vertices: torch.Tensor, camera: Camera, texture_size: int,
               depth_tolerance: float = 0.005) -> tuple[torch.Tensor, torch.Tensor]:
        """Camera image [B, H, W, C] (C = 3, or more channels such as a mask) -> UV texture [B, C, T, T] and
        visibility [B, 1, T, T] in {0, 1}.

        Each texel's surface point is projected into the camera, depth-tested against the camera's
        z-buffer (tolerance as in `visible_vertices`) and the image sampled bilinearly there; invisible
        texels are 0. Differentiable w.r.t. the image and the vertices.
        """
        B = vertices.shape[0]
        H, W = camera.height, camera.width
        if image.shape[:3] != (B, H, W):
            raise ValueError(f"MeshRenderer.unwrap: image must be [{B}, {H}, {W}, C] to match the vertices "
                             f"and camera, got {tuple(image.shape)}")
        points, texel_covered = self.texel_positions(vertices, texture_size)
        T = texture_size
        points = points.reshape(B, T * T, 3)
        on_mesh, in_front, _ = self._depth_test(points.detach(), vertices.detach(), camera, depth_tolerance)
        visible = on_mesh & in_front & texel_covered.reshape(1, T * T)
        uv, _ = project(points, camera)
        scale = torch.tensor([1.0 / W, 1.0 / H], dtype=uv.dtype, device=uv.device)
        samples = self.backend.texture(image.to(uv.dtype), (uv * scale).reshape(B, T, T, 2))
        vis = visible.reshape(B, T, T, 1).to(samples.dtype)
        texture = (samples * vis).permute(0, 3, 1, 2)
        return texture, vis.permute(0, 3, 1, 2)

    def texel_view_cosine(self, vertices: torch.Tensor, camera: Camera, texture_size: int) -> torch.Tensor:
        """[B, 1, T, T] cosine between each texel's surface normal and its direction to the camera centre
        (0 outside the UV layout, negative when facing away); a weight for merging several cameras'
        unwraps, since grazing views carry the least texture detail."""
        points, covered = self.texel_positions(vertices, texture_size)
        rast = self._uv_rast_batch(vertices, texture_size)
        normals = self.backend.interpolate(vertex_normals(vertices, self.faces), rast, self.faces)
        normals = normals / normals.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        to_camera = camera.center()[:, None, None, :].to(points.dtype) - points
        to_camera = to_camera / to_camera.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        cosine = (normals * to_camera).sum(-1) * covered.to(points.dtype)
        return cosine[:, None]
