"""Blender script: one "in-the-wild" clip of the sample subject, rendered with Cycles, with ground truth.

Run inside Blender's Python (the engine's `dlatrack make-sample` does this and encodes the mp4):
    .venv-blender/bin/python sample_scenes/generator/render_wild.py --out DIR --setup sun_sky [--frames 60]

A phone-like camera about a metre away, held by hand (small smooth jitter), films the subject turning the
head (yaw up to +-45 degrees) and making expressions under one of `wild_setups.SETUPS`. Writes
`frames/<i:06d>.png` (8-bit sRGB), `masks/<i:06d>.png` (face mesh pixels), `gt.npz` and `clip.json` in the
conventions.md "Wild clip" layout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

from dlatrack_engine.lightstage.exr import pass_rgb, read_multilayer_exr  # noqa: E402
from dlatrack_engine.wire.png import encode_png  # noqa: E402
from sample_scenes.generator import bpy_scene, rigs  # noqa: E402
from sample_scenes.generator.albedo import linear_to_srgb  # noqa: E402
from sample_scenes.generator.expressions import EXPRESSION_NAMES  # noqa: E402
from sample_scenes.generator.face_model import landmark_points  # noqa: E402
from sample_scenes.generator.head_parts import ellipsoid  # noqa: E402
from sample_scenes.generator.subject_bpy import build_subject, pose_subject  # noqa: E402
from sample_scenes.generator.varying_setups import (  # noqa: E402
    VARYING_NAMES,
    base_setup,
    light_ground_truth,
    lights_per_frame,
    varying_by_name,
)
from sample_scenes.generator.wild_setups import SETUPS  # noqa: E402

log = logging.getLogger("render_wild")
CAMERA_DISTANCE = 1.0
FIELD_OF_VIEW_DEG = 20.0  # a phone's 2x lens: the head fills a good part of the frame at 1 m


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--setup", required=True, choices=[s.name for s in SETUPS] + list(VARYING_NAMES))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--yaw-max", type=float, default=45.0, help="degrees")
    parser.add_argument("--seed", type=int, default=0, help="subject seed (same as the light stage)")
    parser.add_argument("--subject-seed", type=int, default=0, help="who the subject is (same as the light stage)")
    parser.add_argument("--performance-seed", type=int, default=None,
                        help="seed of the head motion, expressions and hand-held camera (default: --seed); another "
                             "value is another take of the same subject under the same set-up")
    parser.add_argument("--texture-size", type=int, default=512)
    return parser.parse_args(argv)


def handheld_cameras(n: int, size: int, seed: int) -> list[rigs.Camera]:
    """A camera ~1 m in front of the face with smooth hand-held drift (about 1 cm, 1 degree)."""
    rng = np.random.default_rng(seed + 5)
    keys = rng.normal(0.0, 1.0, (n // 10 + 3, 6)) * [0.01, 0.008, 0.015, 0.012, 0.012, 0.008]
    drift = rigs._smooth_track(n, keys, 10)
    focal = 0.5 * size / np.tan(np.radians(FIELD_OF_VIEW_DEG / 2))
    cameras = []
    for k in range(n):
        centre = rigs.FACE_CENTRE + np.array([0.0, 0.02, CAMERA_DISTANCE]) + drift[k, :3]
        rot, _ = rigs.look_at(centre, rigs.FACE_CENTRE)
        rot = rigs.rotation_matrix(drift[k, 3:]) @ rot  # the hand wobbles the view direction too
        cameras.append(rigs.Camera("phone", rigs.intrinsics(focal, size, size), rot, -rot @ centre, size, size))
    return cameras


def build_room(setup, lights) -> list:
    """The room and its lights as at the first frame; returns the light objects (animated per frame)."""
    bpy_scene.set_world_colour(setup.world_colour, setup.world_strength, backdrop=setup.backdrop_colour)
    torso = ellipsoid("torso", (0.0, -34.0, -3.0), (19.0, 11.0, 11.0), setup.shirt_colour, 0.8)
    bpy_scene.add_part(torso)
    return [
        bpy_scene.add_light(
            f"light{n}", light.kind, light.position, light.power, light.colour, radius=light.radius,
            target=(0.0, 0.0, 0.0), size=light.size, angle=light.angle,
        )
        for n, light in enumerate(lights)
    ]


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.time()
    setup = base_setup(args.setup)  # a varying set-up renders its base room's take: same motion and camera
    lights = lights_per_frame(args.setup, args.frames)
    clip_index = [s.name for s in SETUPS].index(setup.name)
    bpy_scene.reset_scene(args.size, args.size, args.samples, denoise=True, seed=args.seed + clip_index)
    textures = tempfile.TemporaryDirectory(prefix="dlatrack_tex_")
    subject = build_subject(Path(textures.name), args.texture_size, args.seed, args.subject_seed)
    light_objects = build_room(setup, lights[0])
    take = args.seed if args.performance_seed is None else args.performance_seed
    perf = rigs.performance(
        args.frames, take * 1000 + 17 * (clip_index + 1), yaw_max=np.radians(args.yaw_max),
        pitch_max=np.radians(10.0), roll_max=np.radians(5.0), sweep=True,
    )  # fmt: skip
    cameras = handheld_cameras(args.frames, args.size, take * 1000 + clip_index)
    cam_obj = bpy_scene.add_camera(cameras[0])
    (args.out / "frames").mkdir(parents=True, exist_ok=True)
    (args.out / "masks").mkdir(parents=True, exist_ok=True)
    mesh = subject.mesh
    gt = {k: [] for k in ("head_R", "head_t", "vertices", "expression", "camera_R", "camera_t", "landmarks_2d")}
    with tempfile.TemporaryDirectory(prefix="dlatrack_wild_") as scratch:
        exr = Path(scratch) / "frame.exr"
        for k, cam in enumerate(cameras):
            vertices = pose_subject(subject, perf.expression[k], perf.head_R[k], perf.head_t[k])
            bpy_scene.update_camera(cam_obj, cam)
            if args.setup in VARYING_NAMES:
                for obj, light in zip(light_objects, lights[k], strict=True):
                    bpy_scene.update_light(obj, light.position, light.power, light.colour, target=(0.0, 0.0, 0.0))
            bpy_scene.render_exr(cam_obj, exr)
            channels = read_multilayer_exr(exr)
            image = pass_rgb(channels, "ViewLayer.Combined", str(exr))
            mask = np.abs(channels["ViewLayer.Object Index.X"] - bpy_scene.FACE_PASS_INDEX) < 0.5
            srgb = (linear_to_srgb(image) * 255.0 + 0.5).astype(np.uint8)
            (args.out / "frames" / f"{k:06d}.png").write_bytes(encode_png(srgb))
            (args.out / "masks" / f"{k:06d}.png").write_bytes(encode_png(mask.astype(np.uint8) * 255))
            head_R = cam.R @ perf.head_R[k]  # head -> camera: the camera frame is the clip's world
            head_t = cam.R @ perf.head_t[k] + cam.t
            lm = landmark_points(vertices, mesh.faces, mesh.landmark_faces, mesh.landmark_barycentrics)
            proj = (cam.K @ (head_R @ lm.T + head_t[:, None])).T
            for key, value in (
                ("head_R", head_R), ("head_t", head_t), ("vertices", vertices), ("expression", perf.expression[k]),
                ("camera_R", cam.R), ("camera_t", cam.t), ("landmarks_2d", proj[:, :2] / proj[:, 2:]),
            ):  # fmt: skip
                gt[key].append(np.asarray(value, np.float32))
            log.info("%s: frame %d/%d (%.1f s)", args.setup, k + 1, args.frames, time.time() - start)
    arrays = {key: np.stack(values) for key, values in gt.items()}
    arrays["K"] = cameras[0].K.astype(np.float32)
    arrays["expression_names"] = np.array(EXPRESSION_NAMES)
    if args.setup in VARYING_NAMES:  # static clips keep their gt.npz fields as they were
        arrays.update(light_ground_truth(lights))
    np.savez_compressed(args.out / "gt.npz", **arrays)
    np.savez_compressed(args.out / "topology.npz", **mesh.topology_arrays())
    clip = {
        "name": args.setup,
        "fps": args.fps,
        "width": args.size,
        "height": args.size,
        "frame_count": args.frames,
        "lighting": varying_by_name(args.setup).description if args.setup in VARYING_NAMES else setup.description,
        "seed": args.seed,
        "performance_seed": take,
        "subject_seed": args.subject_seed,
        "samples": args.samples,
        "yaw_max_deg": args.yaw_max,
        "renderer": "Blender Cycles (CPU), OpenImageDenoise",
        "render_s": round(time.time() - start, 2),
    }
    (args.out / "clip.json").write_text(json.dumps(clip, indent=1))
    textures.cleanup()
    log.info("clip %s written to %s in %.1f s", args.setup, args.out, time.time() - start)
    return 0


if __name__ == "__main__":
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    sys.exit(main(argv))
