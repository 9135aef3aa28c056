"""The video's lighting during registration: a light code (one for the clip, or one per frame where the
lighting changes) and the network that turns it into per-texel gain and bias (Eq. 2-3), in the three variants
the pipeline compares.

- "G":    the paper's model: light code l (150, from zeros) and a copy of the avatar's G (φ, adapted in
          step 2; the avatar itself is never modified). `pretrained=False` re-initialises φ randomly:
          the "without light-stage pre-training" ablation of Table 2.
- "SH":   the "Ours-SH" baseline: 27 second-order SH coefficients (from the identity, ambient = 1), gain
          from per-texel normals in the camera frame, bias 0. No network to adapt.
- "none": the fully-lit texture as is (gain 1, bias 0).

Time-varying lighting (issue 18, docs/method.md "Lighting that changes during the video"): with `frames` = N
the lighting also holds per-frame offsets δ [N, C], and frame t is lit by l_t = l + δ_t (φ shared). `at(rows)`
gives the lighting of some frames as a view whose code is [B, C]: everything that renders a batch of frames
(steps 2-3, evaluation, preview) takes that view, and a static lighting (no offsets) is its own view.
"""

from __future__ import annotations

import copy
import logging

import torch
from torch import nn

from dlatrack_engine.geometry import vertex_normals
from dlatrack_engine.models.sh import NUM_SH_COEFFS, SHLighting, identity_sh_coeffs

log = logging.getLogger(__name__)

LIGHTING_KINDS = ("G", "SH", "none")


class VideoLighting(nn.Module):
    """`code` is the video-wide lighting parameter (l, or SH coefficients); `network` is φ (G only)."""

    def __init__(self, kind: str, avatar, renderer=None, pretrained: bool = True, seed: int = 0,
                 frames: int = 0) -> None:
        super().__init__()
        if kind not in LIGHTING_KINDS:
            raise ValueError(f"unknown lighting '{kind}': expected one of {LIGHTING_KINDS}")
        self.kind = kind
        self.renderer = renderer
        device = avatar.device
        self.network: nn.Module | None = None
        if kind == "G":
            self.network = copy.deepcopy(avatar.lighting)
            if not pretrained:
                generator_state = torch.random.get_rng_state()
                torch.manual_seed(seed)
                for module in self.network.modules():
                    if hasattr(module, "reset_parameters") and module is not self.network:
                        module.reset_parameters()
                torch.random.set_rng_state(generator_state)
            self.code = nn.Parameter(torch.zeros(1, self.network.cfg.code_size, device=device))  # l from zeros
        elif kind == "SH":
            if renderer is None:
                raise ValueError("SH lighting needs the renderer (per-texel normals come from the UV raster)")
            self.sh = SHLighting()
            self.code = nn.Parameter(identity_sh_coeffs(1, device))
        else:
            self.code = nn.Parameter(torch.zeros(1, 0, device=device), requires_grad=False)
        self.offsets: nn.Parameter | None = None
        self.row_map: torch.Tensor | None = None  # rows -> offset rows (frames sharing one offset), None: identity
        self.fit_shared = True  # False: l stays fixed and only the offsets are fitted (independent codes)
        if frames > 0 and self.code.shape[1] > 0:
            self.offsets = nn.Parameter(torch.zeros(frames, self.code.shape[1], device=device))

    @property
    def is_sequence(self) -> bool:
        return self.offsets is not None

    def code_parameters(self) -> list[nn.Parameter]:
        """l, and the per-frame offsets δ of a time-varying lighting: what half-round a of Algorithm 1 fits."""
        if self.offsets is None:
            return [self.code]
        return [self.code, self.offsets] if self.fit_shared else [self.offsets]

    def frame_codes(self) -> torch.Tensor:
        """l_t of every frame [N, C] (a static lighting: its one l, [1, C]), detached."""
        code = self.code.detach()
        return code + self.offsets.detach() if self.offsets is not None else code

    def set_frame_codes(self, codes: torch.Tensor) -> None:
        """Make this a lighting of len(codes) frames lit by codes [N, C] (l = their mean, δ_t the rest)."""
        codes = torch.as_tensor(codes, dtype=self.code.dtype, device=self.code.device).reshape(-1, self.code.shape[1])
        with torch.no_grad():
            self.code.copy_(codes.mean(0, keepdim=True))
        self.offsets = nn.Parameter(codes - self.code.detach(), requires_grad=False)
        self.row_map = None

    def at(self, rows) -> VideoLighting:
        """The lighting of frames `rows` (indices into the offsets) as a view with code [B, C] that keeps the
        gradient to l and δ; a static lighting returns itself."""
        if self.offsets is None:
            return self
        view = VideoLighting.__new__(VideoLighting)
        nn.Module.__init__(view)
        view.kind, view.renderer, view.network, view.offsets = self.kind, self.renderer, self.network, None
        view.row_map = None
        if self.kind == "SH":
            view.sh = self.sh
        index = torch.as_tensor(rows, dtype=torch.long, device=self.offsets.device)
        if self.row_map is not None:
            index = self.row_map[index]
        view.code = self.code + self.offsets[index]  # a tensor, not a parameter: the view owns nothing
        return view

    def network_parameters(self) -> list[nn.Parameter]:
        """φ (empty for SH / none)."""
        return list(self.network.parameters()) if self.network is not None else []

    def gain_bias(self, head_view: torch.Tensor, texture: torch.Tensor,
                  vertices_world: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 3 (or the SH / identity stand-in): -> gain, bias [B, 3, T, T]."""
        batch = texture.shape[0]
        if self.kind == "G":
            return self.network(self.code.expand(batch, -1), head_view, texture)
        if self.kind == "SH":
            size = texture.shape[-1]
            normals = vertex_normals(vertices_world, faces)  # camera frame: the lighting is fixed there
            rast = self.renderer.uv_rast(size).expand(batch, -1, -1, -1).to(normals.dtype)
            normals_uv = self.renderer.backend.interpolate(normals, rast, self.renderer.faces)
            return self.sh(self.code.expand(batch, NUM_SH_COEFFS), normals_uv.permute(0, 3, 1, 2), texture)
        return torch.ones_like(texture), torch.zeros_like(texture)

    def light_code(self) -> torch.Tensor:
        return self.code.detach()[0]


class HeldMaps:
    """Gain and bias maps [B, 3, T, T] evaluated once and returned for any pose, texture and mesh.

    Step 3 moves each head by millimetres and fractions of a degree from its start, where G's maps barely
    change, yet re-running G (and back-propagating through it) was 37 % of every step-3 iteration on a CPU.
    Holding the maps of the start pose leaves Eq. 7's alignment cue (the mesh moving under fixed per-texel
    shading) and the texture's own dependence on z intact (docs/method.md, step 3's departures).
    """

    def __init__(self, gain: torch.Tensor, bias: torch.Tensor) -> None:
        self.gain, self.bias = gain, bias

    def gain_bias(self, head_view: torch.Tensor, texture: torch.Tensor, vertices_world: torch.Tensor,
                  faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if texture.shape != self.gain.shape:
            raise ValueError(f"HeldMaps: held for textures {tuple(self.gain.shape)}, got {tuple(texture.shape)}")
        return self.gain, self.bias


def lighting_at(lighting: VideoLighting | None, rows) -> VideoLighting | None:
    """`lighting.at(rows)`, passing None (fully lit) through."""
    return None if lighting is None else lighting.at(rows)
