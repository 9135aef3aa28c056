"""Blender script: the virtual light stage (docs/method.md, Eq. 4-5) rendered with Cycles into the dataset format.

Run inside Blender's Python (the engine's `dlatrack make-sample` does this):
    .venv-blender/bin/python sample_scenes/generator/render_lightstage.py --out DIR [--cameras 6 ...]

Per camera and time step, one path-traced render with every LED on gives the fully-lit image (Cycles'
combined pass) and, through Cycles light groups, every group's share of it (one pass per group). Those
passes split the samples 50 ways and are too noisy to train on, so each "group" frame is its own render
with only its pattern's LEDs visible; the passes serve the check that the 50 groups add up to the fully-lit
image (their sum is written for the first step under `checks/`). Each time step is written as one "full"
frame followed by `--groups-per-step` "group" frames.

A pattern lights a few groups at once (`--groups-per-pattern MIN MAX`), not one: the paper's 13-minute
capture shows each of its 50 patterns thousands of times, while a sample of a few dozen steps could show a
single group in about one frame, and G cannot learn what a group does from one sighting. Drawing the groups
of successive patterns from shuffled decks of all 50 lights every group in several frames (several poses
and views); light adds linearly, so the 150-D code is still the frame's exact on/off vector, and a held-out
frame's pattern is a combination never seen in training of groups that were.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from dlatrack_engine.lightstage import format as fmt  # noqa: E402
from dlatrack_engine.lightstage.exr import pass_rgb, read_multilayer_exr  # noqa: E402
from dlatrack_engine.lightstage.writer import LightStageWriter, encode_linear_png16  # noqa: E402
from sample_scenes.generator import bpy_scene, rigs  # noqa: E402
from sample_scenes.generator.expressions import EXPRESSION_NAMES  # noqa: E402
from sample_scenes.generator.subject_bpy import build_subject, pose_subject  # noqa: E402

log = logging.getLogger("render_lightstage")
LIGHT_POWER_W = 1.6  # per LED; 150 LEDs light the face to about 0.5 linear


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--steps", type=int, default=40, help="time steps of the performance")
    parser.add_argument("--first-step", type=int, default=0,
                        help="render steps first-step..steps-1 only (to extend a capture; merge the folders after)")
    parser.add_argument("--groups-per-step", type=int, default=4, help="pattern frames per time step")
    parser.add_argument("--groups-per-pattern", type=int, nargs=2, default=(2, 6), metavar=("MIN", "MAX"),
                        help="light groups lit together in one pattern frame (drawn uniformly)")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--samples", type=int, default=32, help="samples of the fully-lit render")
    parser.add_argument("--group-samples", type=int, default=32, help="samples of each group render")
    parser.add_argument("--no-denoise", action="store_true", help="keep Cycles' raw noisy images")
    parser.add_argument("--texture-size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subject-seed", type=int, default=0, help="who the subject is (0: the reference face)")
    parser.add_argument("--threads", type=int, default=0)
    return parser.parse_args(argv)


def build_stage(args: argparse.Namespace):
    bpy_scene.reset_scene(args.width, args.height, args.samples, denoise=not args.no_denoise, seed=args.seed)
    subject = build_subject(args.out / "subject", args.texture_size, args.seed, args.subject_seed)
    cameras = rigs.stage_cameras(args.cameras, args.width, args.height)
    camera_objs = [bpy_scene.add_camera(cam) for cam in cameras]
    dome = rigs.light_dome(fmt.NUM_LIGHT_GROUPS, seed=args.seed)
    names = [f"g{g:02d}" for g in range(fmt.NUM_LIGHT_GROUPS)]
    bpy_scene.add_light_groups(names)
    leds = [
        [bpy_scene.add_light(f"led_{g:02d}_{k}", "POINT", p, LIGHT_POWER_W, lightgroup=names[g])
         for k, p in enumerate(group)]
        for g, group in enumerate(dome)
    ]  # fmt: skip
    return subject, cameras, camera_objs, dome, leds


def show_groups(leds: list, groups: list[int] | None) -> None:
    """Make only `groups` emit (None: every LED)."""
    for g, group in enumerate(leds):
        for led in group:
            led.hide_render = groups is not None and g not in groups


def write_check_image(root: Path, camera: str, image: np.ndarray, exposure_scale: float) -> None:
    """The sum of all 50 light-group passes of step 0, for the validation's additivity check."""
    path = root / "checks" / f"{camera}_group_sum.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_linear_png16(image, exposure_scale))


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    start = time.time()
    subject, cameras, camera_objs, dome, leds = build_stage(args)
    scene = bpy.context.scene
    perf = rigs.performance(args.steps, args.seed)
    writer = LightStageWriter(
        args.out,
        [vars(c) for c in cameras],
        subject.mesh.topology_arrays(),
        provenance={
            "generator": "sample_scenes/generator/render_lightstage.py",
            "renderer": "Blender Cycles (CPU), light groups",
            "denoised": not args.no_denoise,
            "seed": args.seed,
            "subject": subject.mesh.params.describe(),
            "samples": args.samples,
            "command_args": argv,
        },
        extra={
            "expression_names": list(EXPRESSION_NAMES),
            "light_positions": dome.tolist(),
            "subject_textures": {k: str(p.relative_to(args.out)) for k, p in subject.texture_paths.items()},
        },
    )
    schedule = rigs.pattern_schedule(args.steps, args.groups_per_step, tuple(args.groups_per_pattern), args.seed)
    render_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="dlatrack_ls_") as scratch:
        for step in range(args.first_step, args.steps):
            vertices = pose_subject(subject, perf.expression[step], perf.head_R[step], perf.head_t[step])
            patterns = schedule[step]
            full, masks, per_pattern = {}, {}, [{} for _ in patterns]
            for cam, obj in zip(cameras, camera_objs, strict=True):
                exr = Path(scratch) / f"{cam.name}.exr"
                t0 = time.time()
                show_groups(leds, None)
                scene.cycles.samples = args.samples
                bpy_scene.render_exr(obj, exr)
                channels = read_multilayer_exr(exr)
                full[cam.name] = pass_rgb(channels, "ViewLayer.Combined", str(exr))
                masks[cam.name] = np.abs(channels["ViewLayer.Object Index.X"] - bpy_scene.FACE_PASS_INDEX) < 0.5
                if step == 0:
                    group_sum = sum(pass_rgb(channels, f"ViewLayer.Combined_g{g:02d}") for g in range(len(leds)))
                    write_check_image(args.out, cam.name, group_sum, writer.exposure_scale)
                scene.cycles.samples = args.group_samples
                for pattern, images in zip(patterns, per_pattern, strict=True):
                    show_groups(leds, pattern)
                    bpy_scene.render_exr(obj, exr)
                    images[cam.name] = pass_rgb(read_multilayer_exr(exr), "ViewLayer.Combined", str(exr))
                render_seconds += time.time() - t0
                exr.unlink()
            base = step * (1 + args.groups_per_step)
            common = {
                "head_R": perf.head_R[step],
                "head_t": perf.head_t[step],
                "vertices": vertices,
                "masks": masks,
                "extra_meta": {"expression": perf.expression[step].astype(np.float32)},
            }
            writer.add_frame(base, "full", fmt.full_light_code(), images=full, extra_fields={"step": step}, **common)
            for k, (pattern, images) in enumerate(zip(patterns, per_pattern, strict=True)):
                writer.add_frame(
                    base + 1 + k, "group", fmt.group_light_code(pattern), images=images,
                    extra_fields={"step": step, "groups": pattern}, **common,
                )  # fmt: skip
            log.info("step %d/%d done (%.1f s so far)", step + 1, args.steps, time.time() - start)
    writer.close(timing={"total_s": round(time.time() - start, 2), "render_s": round(render_seconds, 2)})
    log.info("light stage written to %s in %.1f s", args.out, time.time() - start)
    return 0


if __name__ == "__main__":
    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else sys.argv[1:]
    sys.exit(main(argv))
