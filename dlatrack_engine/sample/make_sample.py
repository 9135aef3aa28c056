"""`dlatrack make-sample`: render the sample subject's light stage, DAM data and wild clips, then check them.

Blender runs as a subprocess (`paths.blender_command`) on the bpy scripts in `sample_scenes/generator/`;
this side unwraps the DAM textures, encodes the clips' mp4, validates everything and draws the contact
sheet. Output layout (default `cache/sample/`):
    lightstage/          light-stage dataset (conventions.md), with uv/ (DAM training textures)
    clips/<setup>/       wild clips (frames/, masks/, video.mp4, gt.npz, clip.json, topology.npz)
    varying/<setup>/     opt-in time-varying lighting clips (`--clips varying_...`, issue 18), the same layout
                         plus per-frame light ground truth in gt.npz; kept apart from the static Table 1
    contact_sheet.png, validation.json, summary.json, logs/
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .. import paths
from .clips import STATIC_FOLDER, VARYING_FOLDER, encode_clip_video, export_clip

log = logging.getLogger(__name__)
GENERATOR = paths.SAMPLE_SCENES / "generator"
WILD_SETUPS = ("sun_sky", "warm_key_cool_fill", "coloured", "dim_side_lamp", "screen_dark_room")
# sample_scenes/generator/varying_setups.py VARYING_NAMES (that module needs the repository on sys.path)
VARYING_SETUPS = ("varying_moving_key", "varying_switch", "varying_colour", "varying_fade")


def clip_folder(out: Path, setup: str) -> Path:
    """Where a set-up's clip goes: `clips/` (static, Table 1) or `varying/` (time-varying lighting)."""
    return out / (VARYING_FOLDER if setup in VARYING_SETUPS else STATIC_FOLDER) / setup


@dataclass(frozen=True)
class SampleConfig:
    """Everything that decides the rendered data; presets below, every field overridable on the CLI."""

    cameras: int = 6
    steps: int = 25
    groups_per_step: int = 4  # pattern frames per step: 100 patterns light each of the 50 groups ~8 times
    groups_per_pattern: tuple[int, int] = (2, 6)
    stage_size: int = 160
    stage_samples: int = 16
    clip_frames: int = 60
    clip_size: int = 256
    clip_samples: int = 12
    texture_size: int = 512
    uv_size: int = 256
    clips: tuple[str, ...] = WILD_SETUPS
    seed: int = 0
    performance_seed: int | None = None  # wild clips' motion and camera (None: `seed`); the subject stays
    subject_seed: int = 0  # who the subject is (face shape, skin, hair); 0 is the reference face


PRESETS = {
    "default": SampleConfig(),
    "tiny": SampleConfig(
        cameras=2, steps=2, groups_per_step=1, groups_per_pattern=(2, 3), stage_size=64, stage_samples=4,
        clip_frames=2, clip_size=64, clip_samples=4, texture_size=128, uv_size=64, clips=("dim_side_lamp",),
    ),
    "large": SampleConfig(cameras=8, steps=120, groups_per_step=4, stage_size=384, stage_samples=64,
                          clip_frames=240, clip_size=512, clip_samples=32, texture_size=1024, uv_size=512),
}


def run_blender(script: str, args: list[str], log_path: Path) -> float:
    """Run a generator script inside Blender, its output to `log_path`; returns seconds taken."""
    command = paths.blender_command(GENERATOR / script, args)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(log_path, "w") as stream:
        result = subprocess.run(command, stdout=stream, stderr=subprocess.STDOUT, cwd=paths.REPO_ROOT, check=False)
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise RuntimeError(
            f"Blender script {script} failed (exit {result.returncode}); log {log_path}:\n" + "\n".join(tail)
        )
    return time.time() - start


def render_lightstage(config: SampleConfig, out: Path) -> float:
    args = [
        "--out", str(out / "lightstage"), "--cameras", str(config.cameras), "--steps", str(config.steps),
        "--groups-per-step", str(config.groups_per_step),
        "--groups-per-pattern", *(str(n) for n in config.groups_per_pattern), "--width", str(config.stage_size),
        "--height", str(config.stage_size), "--samples", str(config.stage_samples),
        "--group-samples", str(config.stage_samples), "--texture-size", str(config.texture_size),
        "--seed", str(config.seed), "--subject-seed", str(config.subject_seed),
    ]  # fmt: skip
    return run_blender("render_lightstage.py", args, out / "logs" / "lightstage.log")


def render_clip(config: SampleConfig, setup: str, out: Path) -> float:
    args = [
        "--out", str(clip_folder(out, setup)), "--setup", setup, "--frames", str(config.clip_frames),
        "--size", str(config.clip_size), "--samples", str(config.clip_samples),
        "--texture-size", str(config.texture_size), "--seed", str(config.seed),
        "--subject-seed", str(config.subject_seed),
        *(("--performance-seed", str(config.performance_seed)) if config.performance_seed is not None else ()),
    ]  # fmt: skip
    seconds = run_blender("render_wild.py", args, out / "logs" / f"clip_{setup}.log")
    encode_clip_video(clip_folder(out, setup))
    return seconds


def make_sample(config: SampleConfig, out: Path, lightstage: bool = True, clips: bool = True) -> dict:
    """Render, unwrap, encode, validate and draw the contact sheet; returns the summary (also as JSON)."""
    from .contact_sheet import make_contact_sheet
    from .unwrap import unwrap_dataset
    from .validate import validate_sample

    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.time()
    if lightstage:
        log.info("rendering the light stage (%d cameras, %d steps) ...", config.cameras, config.steps)
        timings["lightstage_render_s"] = render_lightstage(config, out)
        t0 = time.time()
        unwrap_dataset(out / "lightstage", config.uv_size)
        timings["uv_unwrap_s"] = time.time() - t0
    if clips:
        for setup in config.clips:
            log.info("rendering wild clip %s (%d frames) ...", setup, config.clip_frames)
            timings[f"clip_{setup}_s"] = render_clip(config, setup, out)
    t0 = time.time()
    report = validate_sample(out, lightstage_expected=lightstage)
    timings["validate_s"] = time.time() - t0
    sheet = make_contact_sheet(out, out / "contact_sheet.png")
    timings["total_s"] = time.time() - start
    summary = {
        "config": asdict(config),
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        "validation_passed": report.passed,
        "contact_sheet": str(sheet),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def record_bench(out: Path, command: str, note: str = "") -> Path:
    """Write the sample set's render times to bench/RESULTS.md (section "make-sample: default data set").

    Times come from the Blender logs' own totals (dataset.json `timing`, each clip.json `render_s`), so a
    set rendered in several invocations (e.g. --skip-clips, then --skip-lightstage) is summed correctly.
    """
    if str(paths.REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(paths.REPO_ROOT))
    from bench.harness import machine_description, markdown_table, write_section

    stage = json.loads((out / "lightstage" / "dataset.json").read_text())
    rows, total = [], 0.0
    if "timing" in stage:
        cams, steps = len(stage["cameras"]), len({f.get("step", f["id"]) for f in stage["frames"]})
        width = stage["cameras"][0]["width"]
        renders = cams * len(stage["frames"])
        seconds = stage["timing"]["total_s"]
        total += seconds
        rows.append([f"light stage: {cams} cameras x {steps} steps, {width} px", renders, f"{seconds:.0f}",
                     f"{seconds / max(renders, 1):.2f}"])  # fmt: skip
    for clip_dir in sorted(p for p in (out / "clips").glob("*") if p.is_dir()):
        clip = json.loads((clip_dir / "clip.json").read_text())
        seconds = clip["render_s"]
        total += seconds
        rows.append([f"clip {clip['name']}: {clip['frame_count']} frames, {clip['width']} px",
                     clip["frame_count"], f"{seconds:.0f}", f"{seconds / clip['frame_count']:.2f}"])  # fmt: skip
    rows.append(["total", "", f"{total:.0f} ({total / 60:.1f} min)", ""])
    body = (
        "Cycles on the CPU through the bpy wheel (Blender 5.0.1), OpenImageDenoise on. Wall-clock times from the\n"
        "generator scripts (scene set-up, renders, EXR parsing, PNG writing).\n\n"
        + markdown_table(["part", "renders / frames", "seconds", "s per render"], rows)
        + (f"\n\n{note}\n" if note else "")
    )
    return write_section("make-sample: default data set", command, body, machine=machine_description())


def check_only(out: Path) -> int:
    """Validate an existing make-sample output and redraw its contact sheet."""
    from .contact_sheet import make_contact_sheet
    from .validate import validate_sample

    report = validate_sample(out)
    sheet = make_contact_sheet(out, out / "contact_sheet.png")
    verdict = "PASSED" if report.passed else "FAILED"
    log.warning("make-sample --check-only: validation %s; contact sheet %s", verdict, sheet)
    return 0 if report.passed else 1


def _config_from_args(args: argparse.Namespace) -> SampleConfig:
    config = PRESETS[args.preset]
    overrides = {
        key: getattr(args, key)
        for key in ("cameras", "steps", "groups_per_step", "stage_size", "stage_samples", "clip_frames",
                    "clip_size", "clip_samples", "texture_size", "uv_size", "seed", "performance_seed",
                    "subject_seed")
        if getattr(args, key) is not None
    }  # fmt: skip
    if args.clips is not None:
        unknown = set(args.clips) - set(WILD_SETUPS) - set(VARYING_SETUPS)
        if unknown:
            raise SystemExit(f"make-sample: unknown clip setups {sorted(unknown)}; known: "
                             f"{list(WILD_SETUPS + VARYING_SETUPS)}")
        overrides["clips"] = tuple(args.clips)
    if args.groups_per_pattern is not None:
        overrides["groups_per_pattern"] = tuple(args.groups_per_pattern)
    return replace(config, **overrides)


def run(args: argparse.Namespace) -> int:
    config = _config_from_args(args)
    out = Path(args.out) if args.out else paths.cache_dir() / "sample"
    if args.write_subject:
        from .subject import write_subject

        if config.subject_seed != 0:
            raise SystemExit("make-sample --write-subject: sample_scenes/subject/ holds subject seed 0 only")

        log.warning("make-sample: wrote %s", write_subject(seed=config.seed, texture_size=config.texture_size))
        return 0
    if args.export_clip:
        target = export_clip(out / "clips" / args.export_clip, args.export_root / args.export_clip,
                             args.export_frames)  # fmt: skip
        log.warning("make-sample: exported %s", target)
        return 0
    if args.check_only:
        return check_only(out)
    if args.bench:
        log.warning("make-sample: wrote %s", record_bench(out, "dlatrack make-sample", args.bench_note))
        return 0
    summary = make_sample(config, out, lightstage=not args.skip_lightstage, clips=not args.skip_clips)
    log.warning("make-sample: %s in %.0f s; validation %s; contact sheet %s", out,
                summary["timings_s"]["total_s"], "PASSED" if summary["validation_passed"] else "FAILED",
                summary["contact_sheet"])  # fmt: skip
    return 0 if summary["validation_passed"] else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "make-sample", help="render the synthetic subject's light stage, DAM data and wild clips (Cycles)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default")
    parser.add_argument("--out", help="output folder (default: <cache>/sample)")
    for key in ("cameras", "steps", "groups_per_step", "stage_size", "stage_samples", "clip_frames", "clip_size",
                "clip_samples", "texture_size", "uv_size", "seed", "performance_seed", "subject_seed"):  # fmt: skip
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, dest=key)
    parser.add_argument("--groups-per-pattern", type=int, nargs=2, metavar=("MIN", "MAX"),
                        help="light groups lit together in one light-stage pattern frame")
    parser.add_argument("--clips", nargs="*", help=f"wild setups to render (default all: {' '.join(WILD_SETUPS)}); "
                        f"opt-in time-varying lighting, into <out>/varying/: {' '.join(VARYING_SETUPS)}")
    parser.add_argument("--skip-lightstage", action="store_true")
    parser.add_argument("--skip-clips", action="store_true")
    parser.add_argument("--write-subject", action="store_true",
                        help="rewrite sample_scenes/subject/ (topology.npz, textures) from the generator and stop")
    parser.add_argument("--export-clip", metavar="SETUP",
                        help="copy the first --export-frames frames of a rendered clip to <export-root>/SETUP")
    parser.add_argument("--export-frames", type=int, default=30)
    parser.add_argument("--export-root", type=Path, default=paths.SAMPLE_SCENES / "clips",
                        help="folder --export-clip writes SETUP/ into (default sample_scenes/clips)")
    parser.add_argument("--bench", action="store_true",
                        help="record the output's render times in bench/RESULTS.md and stop")
    parser.add_argument("--bench-note", default="", help="a remark stored with --bench (e.g. machine load)")
    parser.add_argument("--check-only", action="store_true",
                        help="only validate an existing output and redraw its contact sheet")
    parser.set_defaults(func=run)
