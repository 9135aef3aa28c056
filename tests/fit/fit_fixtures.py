"""A tiny, random-but-fixed avatar and synthetic clip for the registration tests.

The avatar is a 12x12-vertex dome (toy_lightstage.dome_topology) with a small random DAM (latent 6) whose mean
texture is a procedural pattern with detail at several scales (so the pixel and flow terms have something to
align), and a small G perturbed away from identity. The clip's ground truth comes from the same avatar, so a
perfect registration exists and the tests can measure how close each step gets.

`make_avatar`'s G ignores the light code l and h_v (pose and view): its small random weights damp the 1x1 light
feature to nothing, so its gain and bias are a fixed function of the texture (measured: another l, a zero
rotation or another view moves the relit texture by ~1e-6 levels; test_step2_truth.py checks it). On it, a
fitted l cannot be told from a random one, and step 2 can only adapt φ. Tests about l or h_v use
`responsive_avatar`: the same DAM with a G whose l and h_v change the relit texture by several levels. The
registration tests keep `make_avatar` (their bars were measured on it).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from toy_lightstage import dome_topology

from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.colour import srgb8_to_linear
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.schedule import Schedule, Step1Schedule, Step2Schedule, Step3Schedule
from dlatrack_engine.landmarks.exposure import second_looks
from dlatrack_engine.models.dam import DAM, DAMConfig
from dlatrack_engine.models.lighting import LightingConfig, LightingModel

TEX = 32
LATENT = 6
SMALL_G = dict(mlp_width=16, light_channels=(16, 16, 8, 8, 8), texture_channels=(8, 8, 8, 8), branch_channels=8)
WIDTH = HEIGHT = 96
FOCAL = 220.0


def pattern_texture(size: int) -> torch.Tensor:
    """[3, T, T] linear RGB in (0.1, 0.9): stripes + checks + blobs, distinct per channel."""
    y, x = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    base = 0.5 + 0.2 * torch.sin(2 * math.pi * 3 * x) * torch.cos(2 * math.pi * 2 * y)
    checks = 0.15 * torch.sign(torch.sin(2 * math.pi * 5 * x) * torch.sin(2 * math.pi * 5 * y))
    blob = 0.2 * torch.exp(-((x - 0.35) ** 2 + (y - 0.6) ** 2) / 0.02)
    return torch.stack([base + checks, base - 0.5 * checks + blob, 0.6 * base + blob]).clamp(0.1, 0.9)


def make_avatar(seed: int = 0) -> Avatar:
    torch.manual_seed(seed)
    topo = dome_topology(12, radius=0.1, seed=seed)
    dam = DAM(DAMConfig(num_vertices=topo.num_vertices, texture_size=TEX, latent_size=LATENT, base_grid=4,
                        mesh_hidden=32, max_channels=16, min_channels=8))
    dam.set_normalisation(torch.as_tensor(topo.neutral), 0.004, pattern_texture(TEX), 0.02)
    g_cfg = LightingConfig(texture_size=TEX, input_texture_size=16, energy_normalised=False, **SMALL_G)
    lighting = LightingModel(g_cfg)
    with torch.no_grad():
        for p in lighting.parameters():
            p.add_(0.03 * torch.randn(p.shape))  # logical order, whatever the layout (`_draw_normal`)
    return Avatar(dam, lighting, topo, {"name": "test-dome"})


def responsive_avatar(seed: int = 0) -> Avatar:
    """The fixtures' dome DAM with an energy-normalised G whose light feature carries l and h_v: the light
    path's layers initialised to keep their signal's scale (the feature maps are 1x1, so only the centre
    taps count), the branches' last layers small but not zero (an identity G would make l a pure scale)."""
    base = make_avatar(seed)
    torch.manual_seed(seed + 100)
    lighting = LightingModel(LightingConfig(texture_size=TEX, input_texture_size=16, energy_normalised=True,
                                            **SMALL_G))
    with torch.no_grad():
        for part in (lighting.light_mlp, lighting.pose_mlp, lighting.fc, lighting.conv, lighting.deconvs):
            for module in part.modules():
                if isinstance(module, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
                    fan_in = module.weight.shape[0 if isinstance(module, nn.ConvTranspose2d) else 1]
                    _draw_normal(module.weight, 1.4 / math.sqrt(fan_in))
                    module.bias.zero_()
        for branch in (lighting.gain_branch, lighting.bias_branch):
            _draw_normal(branch[0].weight, 1.4 / math.sqrt(branch[0].weight.shape[0]))
            _draw_normal(branch[-1].weight, 0.3 / math.sqrt(branch[-1].weight.shape[0]))
    return Avatar(base.dam, lighting, base.topology_arrays, {"name": "test-dome-responsive-g"})


def _draw_normal(weight: torch.Tensor, std: float) -> None:
    """N(0, std²) into `weight` in its logical (row-major) order. G keeps convolution weights channels-last, and
    `normal_` on such a tensor fills memory order, which would give the fixtures another G per layout."""
    weight.copy_(torch.empty(weight.shape).normal_(0.0, std))


def intrinsics() -> torch.Tensor:
    return torch.tensor([[FOCAL, 0, WIDTH / 2], [0, FOCAL, HEIGHT / 2], [0, 0, 1.0]])


def gt_params(frames: int, seed: int = 1) -> FrameParams:
    """Head facing the camera 0.45 m away, turning up to ±0.35 rad, drifting a few cm; z ~ N(0, 0.5)."""
    g = torch.Generator().manual_seed(seed)
    s = torch.linspace(0, 1, frames)
    r = torch.stack([math.pi + 0.15 * torch.sin(4 * s), 0.35 * torch.sin(2 * math.pi * s), 0.1 * s], -1)
    t = torch.stack([0.02 * torch.sin(3 * s), 0.01 * s, 0.45 + 0.03 * s], -1)
    z = 0.5 * torch.randn(frames, LATENT, generator=g)
    return FrameParams(r, t, z)


def truth_lighting(avatar: Avatar, light_seed: int = 7):
    """The lighting `render_clip` renders with: the avatar's G with φ* = φ + 0.05 N(0, 1), then l* ~ U(0, 1)."""
    import copy

    from dlatrack_engine.fit.video_lighting import VideoLighting

    lighting = VideoLighting("G", avatar)
    generator = torch.Generator().manual_seed(light_seed)
    with torch.no_grad():
        lighting.network = copy.deepcopy(avatar.lighting)
        for p in lighting.network.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=generator))
        lighting.code.copy_(torch.rand(1, 150, generator=generator))
    return lighting


def render_clip(avatar: Avatar, truth: FrameParams, light_seed: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames [N, H, W, 3] of `avatar` at `truth` under a lighting it was not adapted to: the avatar's G with
    a random code and a perturbed φ (so adapting φ, not only l, is needed), over a grey background.
    Returns (frames, true light code)."""
    from dlatrack_engine.fit.scene import FaceScene

    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    lighting = truth_lighting(avatar, light_seed)
    with torch.no_grad():
        background = torch.full((len(truth), HEIGHT, WIDTH, 3), 0.2)
        frames = scene.render(truth, lighting, background=background).image.clamp(0, 1)
    return frames, lighting.code.detach().clone()


SMALL_SIDE = 48


def small_clip(avatar: Avatar, count: int):
    """`count` frames of `avatar` at `gt_params(count)` under `truth_lighting`, rendered 48 px square with half
    the focal length over grey: the scene of the fast value tests. -> (scene, frames [N, 48, 48, 3], truth)."""
    from dlatrack_engine.fit.scene import FaceScene

    K = intrinsics()
    K[:2] *= 0.5
    scene = FaceScene(avatar, K, SMALL_SIDE, SMALL_SIDE)
    truth = gt_params(count)
    background = torch.full((count, SMALL_SIDE, SMALL_SIDE, 3), 0.2)
    with torch.no_grad():
        frames = scene.render(truth, truth_lighting(avatar), background=background).image
    return scene, frames.clamp(0, 1), truth


def write_clip(root: Path, avatar: Avatar, truth: FrameParams, light_seed: int = 7) -> np.ndarray:
    """A PNG clip of `avatar` at `truth` with clip.json and gt.npz under `root`; -> noisy true landmarks."""
    import json

    import cv2

    from dlatrack_engine.colour import linear_to_srgb8
    from dlatrack_engine.fit.scene import FaceScene

    frames, _ = render_clip(avatar, truth, light_seed)
    (root / "frames").mkdir(parents=True)
    for i, frame in enumerate(frames.numpy()):
        cv2.imwrite(str(root / "frames" / f"{i:06d}.png"), cv2.cvtColor(linear_to_srgb8(frame), cv2.COLOR_RGB2BGR))
    (root / "clip.json").write_text(json.dumps({"name": "tiny", "fps": 24, "width": WIDTH, "height": HEIGHT}))
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    with torch.no_grad():
        marks = scene.landmarks_2d(truth).numpy()
        vertices = scene.geometry(truth.z).numpy()
    np.savez(root / "gt.npz", K=intrinsics().numpy(), vertices=vertices, head_R=truth.rotation().numpy(),
             head_t=truth.t.numpy())
    noise = np.random.default_rng(0).normal(0, 1.0, marks.shape).astype(np.float32)
    return marks + noise


FRAMES = 6
TINY = Schedule(  # the pipeline tests' schedule: seconds, not minutes

    step1=Step1Schedule(iterations=60, lr=0.1, lr_halving=30, patience=0),
    step2=Step2Schedule(key_frames=3, rounds=1, light_iterations=8, light_lr=5e-2, model_iterations=8,
                        batch_size=3),
    step3=Step3Schedule(iterations=8, lr=0.05, lr_halving=4, patience=0, batch_size=2),
)

MICRO = Schedule(  # the job tests' schedule (test_pipeline_stages.py): bookkeeping and decisions, not accuracy
    step1=Step1Schedule(iterations=4, lr=0.1, patience=0),
    step2=Step2Schedule(key_frames=2, rounds=1, light_iterations=2, model_iterations=2, batch_size=2),
    step3=Step3Schedule(iterations=2, lr=0.05, patience=0, batch_size=4),
)
# The evaluation tests' jobs: MICRO's steps 1 and 2 (what the ceiling re-runs), step 3 as the paper's.
MICRO_STEPS_1_2 = Schedule(step1=MICRO.step1, step2=MICRO.step2)


class ReplayDetector:
    """Landmarks of the ground truth (+ noise), handed out in frame order; the frames in `failing` (default:
    frame 3) 'fail', and so do the engine's second looks at them (landmarks/exposure.py), which come right
    after."""

    name = "replay"

    def __init__(self, points: np.ndarray, failing: tuple[int, ...] = (3,)) -> None:
        self.points, self.failing, self.calls, self.second_looks_left = points, set(failing), 0, 0

    def detect(self, image: np.ndarray):
        if self.second_looks_left:
            self.second_looks_left -= 1
            return None
        i = self.calls
        self.calls += 1
        if i in self.failing:
            self.second_looks_left = len(list(second_looks(srgb8_to_linear(image))))
            return None
        return self.points[i], np.ones(68, np.float32)
