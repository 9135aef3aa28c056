"""Issue 26: is there a scene where Eq. 8 (λ_flow = 3) beats λ_flow = 0? Steps 1-3 on the registration
tests' tiny clip (tests/fit/fit_fixtures.py, 6 frames, 96 px, the step-2/3 test schedule), in variants: the
patterned texture or an almost flat one, a static light or one sweeping across the face
(tests/fit/test_steps23.moving_light), landmarks 1.5 or 4 px off.

    python -m bench.flow_scenes [VARIANT ...]

Prints per variant: step 1's vertex error, how far Π(p̃) and Π(p̃) + d are from the truth's projections,
and step 3's vertex / rotation / reprojection error at λ_flow = 0 and 3.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS / "fit"), str(TESTS)]

from fit_fixtures import HEIGHT, TEX, WIDTH, gt_params, intrinsics, make_avatar, render_clip  # noqa: E402
from test_steps23 import SCHEDULE, _track_dict, moving_light  # noqa: E402

from dlatrack_engine.fit.keyframes import select_key_frames  # noqa: E402
from dlatrack_engine.fit.scene import FaceScene  # noqa: E402
from dlatrack_engine.fit.step1 import fit_landmarks  # noqa: E402
from dlatrack_engine.fit.step2 import adapt_lighting  # noqa: E402
from dlatrack_engine.fit.step3 import flow_targets, track_batch  # noqa: E402
from dlatrack_engine.fit.video_lighting import VideoLighting  # noqa: E402
from dlatrack_engine.metrics.geometry import geometry_errors  # noqa: E402

N = 6


def smooth_avatar():
    """The fixtures' avatar with an almost flat mean texture (one gentle gradient): nothing for DIS to lock on."""
    avatar = make_avatar()
    _, x = torch.meshgrid(torch.linspace(0, 1, TEX), torch.linspace(0, 1, TEX), indexing="ij")
    base = 0.55 + 0.1 * x
    texture = torch.stack([base, 0.8 * base, 0.7 * base])
    avatar.dam.set_normalisation(torch.as_tensor(avatar.topology_arrays.neutral), 0.004, texture, 0.02)
    return avatar


VARIANTS = {  # name -> (avatar, frames transform, landmark noise px)
    "base": (make_avatar, None, 1.5),
    "smooth": (smooth_avatar, None, 1.5),
    "base_noise4": (make_avatar, None, 4.0),
    "moving": (make_avatar, moving_light, 1.5),
    "moving_weak": (make_avatar, lambda f: moving_light(f, 0.4, 8.0), 1.5),
    "smooth_moving": (smooth_avatar, moving_light, 1.5),
    "moving_noise4": (make_avatar, moving_light, 4.0),
}


def run(name: str) -> dict[str, float]:
    make, transform, noise = VARIANTS[name]
    avatar = make()
    scene = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT)
    truth = gt_params(N)
    frames, _ = render_clip(avatar, truth)
    frames = frames if transform is None else transform(frames)
    with torch.no_grad():
        clean = scene.landmarks_2d(truth)
        truth_projected = scene.project(scene.render(truth, None).vertices_world)
    detected = clean + noise * torch.randn(clean.shape, generator=torch.Generator().manual_seed(11))
    torch.manual_seed(0)
    init, _ = fit_landmarks(scene, detected, torch.ones(N, 68), SCHEDULE)
    keys = select_key_frames(init.r.numpy(), 4)
    lighting = VideoLighting("G", avatar)
    adapt_lighting(scene, frames[keys], init.select(keys), lighting, SCHEDULE)
    gt = {**_track_dict(scene, truth), "K": intrinsics().numpy()}
    result = {"step1_mm": geometry_errors(_track_dict(scene, init), gt)["vertex_mm"]}
    projected, d, visible = flow_targets(scene, frames, init, lighting, SCHEDULE.dis_preset)
    seen = visible > 0
    result["pi_p1_px"] = float((truth_projected - projected).norm(dim=-1)[seen].mean())
    result["pi_p1_plus_d_px"] = float((truth_projected - projected - d).norm(dim=-1)[seen].mean())
    for weight in (0.0, 3.0):
        tracked, _ = track_batch(scene, frames, init, lighting, SCHEDULE, flow_weight=weight)
        errors = geometry_errors(_track_dict(scene, tracked), gt)
        for key in ("vertex_mm", "rotation_deg", "reprojection_px"):
            result[f"flow{weight:g}_{key}"] = errors[key]
    return result


def main() -> None:
    torch.set_num_threads(1)
    for name in sys.argv[1:] or list(VARIANTS):
        start = time.monotonic()
        result = run(name)
        print(name, json.dumps({k: round(v, 3) for k, v in result.items()}), f"{time.monotonic() - start:.0f} s",
              flush=True)


if __name__ == "__main__":
    main()
