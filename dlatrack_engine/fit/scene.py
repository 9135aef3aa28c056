"""The registration's forward model: avatar (DAM + G) + camera + renderer, for batches of frames.

This is the only module of `fit/` that calls the avatar and the renderer, so every step sees one small
interface: landmarks (Eq. 6), vertex projections (Eq. 8) and the relit render Î(p) (Eq. 7).
World = the video camera's frame (extrinsics identity), `x_world = R(r) x_head + t` (conventions.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dlatrack_engine.avatar.landmark_views import ViewBinnedEmbedding, bin_weights, view_yaw
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.video_lighting import HeldMaps, VideoLighting
from dlatrack_engine.geometry import matrix_to_axis_angle, transform_points
from dlatrack_engine.models.lighting import head_view_vector, relight
from dlatrack_engine.render.camera import Camera, project
from dlatrack_engine.render.mesh_renderer import MeshRenderer

# The light stage's world frame has +Y up and the subject facing +Z, the video's world is the OpenCV camera
# frame (y down, z forward). G learnt its pose input r in the stage frame, where a subject facing the front
# camera has r ≈ 0; this turns a video head rotation into that frame (a frontal head: R(π x̂) -> identity).
CAMERA_TO_STAGE = torch.diag(torch.tensor([1.0, -1.0, -1.0]))


def lighting_rotation(rotation: torch.Tensor) -> torch.Tensor:
    """G's pose input for video head rotations R [B, 3, 3] (head -> camera): the axis-angle rotation of the
    head in the stage-like frame, |r| < π for every head that faces the camera, so it is continuous in the
    pose, unlike the video's own axis-angle r, which sits at |r| ≈ π where two branches meet."""
    return matrix_to_axis_angle(CAMERA_TO_STAGE.to(rotation) @ rotation)


@dataclass
class RenderOut:
    image: torch.Tensor  # [B, H, W, 3] linear RGB, relit
    mask: torch.Tensor  # [B, H, W, 1] coverage
    vertices: torch.Tensor  # [B, V, 3] head frame
    vertices_world: torch.Tensor  # [B, V, 3]
    texture: torch.Tensor  # [B, 3, T, T] fully lit
    relit_texture: torch.Tensor  # [B, 3, T, T]
    gain: torch.Tensor | None = None  # [B, 3, T, T] the lighting's maps (Eq. 2); None when fully lit
    bias: torch.Tensor | None = None


class FaceScene:
    """Avatar seen by one pinhole camera (K [3, 3], width x height)."""

    def __init__(self, avatar, K: torch.Tensor, width: int, height: int, renderer: MeshRenderer | None = None,
                 backend: str | None = None) -> None:
        self.avatar = avatar
        self.device = avatar.device
        self.K = torch.as_tensor(K, dtype=torch.float32, device=self.device)
        self.width, self.height = int(width), int(height)
        if renderer is None:
            topo = avatar.topology
            renderer = MeshRenderer(topo.faces, topo.uv_faces, topo.uvs, self.device, backend)
        self.renderer = renderer
        self.landmark_embedding, _ = avatar.landmark_embedding(None)
        self.landmark_view_bins: ViewBinnedEmbedding | None = None

    def use_landmarks_of(self, detector: str | None) -> str:
        """Tie Eq. 6 to `detector`'s ℓ_i (calibrated in the package, per view where it has view bins, else
        the default); returns which."""
        self.landmark_embedding, source = self.avatar.landmark_embedding(detector)
        self.landmark_view_bins = self.avatar.landmark_view_bins(detector)
        return source + (", per view" if self.landmark_view_bins is not None else "")

    def camera(self, batch: int) -> Camera:
        eye = torch.eye(3, device=self.device).expand(batch, 3, 3)
        return Camera(self.K.expand(batch, 3, 3), eye, torch.zeros(batch, 3, device=self.device),
                      self.width, self.height)

    # -- geometry ------------------------------------------------------------------------------------
    def geometry(self, z: torch.Tensor) -> torch.Tensor:
        """Head-frame vertices M̃ [B, V, 3] from z without decoding the texture (step 1 needs only the mesh)."""
        dam = self.avatar.dam
        offsets = dam.decoder.mesh(z).view(-1, dam.cfg.num_vertices, 3)
        return dam.mean_vertices + offsets * dam.vertex_std

    def to_world(self, points_head: torch.Tensor, params: FrameParams) -> torch.Tensor:
        return transform_points(params.rotation(), params.t, points_head)

    def project(self, points_world: torch.Tensor) -> torch.Tensor:
        """Π: world (= camera) points [B, N, 3] -> pixels [B, N, 2]."""
        uv, _ = project(points_world, self.camera(points_world.shape[0]))
        return uv

    def landmarks_3d(self, z: torch.Tensor) -> torch.Tensor:
        """M̃(ℓ_i) [B, 68, 3] head frame, with the single embedding."""
        return self.surface_points(z, *self.landmark_embedding)

    def surface_points(self, z: torch.Tensor, faces: torch.Tensor, barycentrics: torch.Tensor) -> torch.Tensor:
        """Barycentric points (faces [K], barycentrics [K, 3]) of the mesh M̃(z) -> [B, K, 3] head frame. The
        DAM's mesh decoder ends in a linear layer, so only the rows of the 3 x K triangle corners are evaluated
        (step 1 runs this every iteration for every frame; decoding all V vertices would cost ~V / 200 times
        more)."""
        dam = self.avatar.dam
        layers = dam.decoder.mesh
        last = layers[-1] if isinstance(layers, torch.nn.Sequential) else None
        if not isinstance(last, torch.nn.Linear):
            return self.avatar.landmarks(self.geometry(z), (faces, barycentrics))
        corners = self.avatar.topology.faces[faces]  # [K, 3] vertex ids
        rows = (corners.reshape(-1, 1) * 3 + torch.arange(3, device=z.device)).reshape(-1)  # xyz rows
        hidden = layers[:-1](z)
        offsets = torch.nn.functional.linear(hidden, last.weight[rows], last.bias[rows]).view(-1, len(faces), 3, 3)
        points = dam.mean_vertices[corners] + offsets * dam.vertex_std  # [B, K, 3 corners, 3]
        return (points * barycentrics[None, :, :, None]).sum(dim=2)

    def landmarks_2d(self, params: FrameParams) -> torch.Tensor:
        """Eq. 6's Π(r̃ M̃(ℓ_i) + t̃) -> [B, 68, 2]. With view bins, ℓ_i is each frame's blend of the bins
        around its current view (avatar/landmark_views.py); the blend weights follow the pose but are not a
        variable of the fit."""
        bins = self.landmark_view_bins
        if bins is None:
            return self.project(self.to_world(self.landmarks_3d(params.z), params))
        count, marks = bins.faces.shape
        per_bin = self.surface_points(params.z, bins.faces.reshape(-1), bins.barycentrics.reshape(-1, 3))
        with torch.no_grad():
            weights = bin_weights(view_yaw(self.view_vector(params)), bins.yaw)  # [B, Bn]
        points = (weights[:, :, None, None] * per_bin.view(-1, count, marks, 3)).sum(dim=1)
        return self.project(self.to_world(points, params))

    def view_vector(self, params: FrameParams) -> torch.Tensor:
        """v_v: unit vector head centre -> camera centre (the origin), in the head frame [B, 3]."""
        to_camera = -params.t / params.t.norm(dim=-1, keepdim=True).clamp_min(1e-8)
        return (params.rotation().transpose(-1, -2) @ to_camera[..., None])[..., 0]

    def head_view(self, params: FrameParams) -> torch.Tensor:
        """h_v of Eq. 3 [B, 6]: G's continuous pose input (`lighting_rotation`) and the view vector."""
        return head_view_vector(lighting_rotation(params.rotation()), self.view_vector(params))

    # -- appearance ----------------------------------------------------------------------------------
    @torch.no_grad()
    def held_maps(self, params: FrameParams, lighting: VideoLighting) -> HeldMaps:
        """The lighting's gain and bias maps at `params`, held for later renders (step 3)."""
        vertices, texture = self.avatar.decode(params.z, self.view_vector(params))
        gain, bias = lighting.gain_bias(self.head_view(params), texture, self.to_world(vertices, params),
                                        self.avatar.topology.faces)
        return HeldMaps(gain, bias)

    def render(self, params: FrameParams, lighting: VideoLighting | HeldMaps | None = None,
               vertices: torch.Tensor | None = None, background: torch.Tensor | None = None) -> RenderOut:
        """Î(p) of Eq. 7: decode (Eq. 1), relight (Eq. 2-3 with the video's lighting; None = fully lit),
        rasterise. `vertices` overrides the decoded head-frame mesh (ground truth in tests)."""
        view = self.view_vector(params)
        decoded_vertices, texture = self.avatar.decode(params.z, view)
        vertices = decoded_vertices if vertices is None else vertices
        world = self.to_world(vertices, params)
        gain = bias = None
        if lighting is None:
            relit = texture
        else:
            gain, bias = lighting.gain_bias(self.head_view(params), texture, world,
                                            self.avatar.topology.faces)
            relit = relight(texture, gain, bias)  # Eq. 2
        out = self.renderer.render(world, self.camera(len(params)), relit, background)
        return RenderOut(out.image, out.mask, vertices, world, texture, relit, gain, bias)

    @torch.no_grad()
    def visible_vertices(self, vertices_world: torch.Tensor) -> torch.Tensor:
        """[B, V] float 0/1: vertices inside the image and not occluded (the vertex set of Eq. 8)."""
        return self.renderer.visible_vertices(vertices_world, self.camera(vertices_world.shape[0])).float()
