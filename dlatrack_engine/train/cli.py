"""`dlatrack train dam|lighting|eval|sample`: train an avatar from a light-stage dataset.

    dlatrack train dam      --data D --out A   # DAM -> package A (with an identity G)
    dlatrack train lighting --data D --out A   # G (Eq. 4-5) against A's DAM -> A
    dlatrack train landmarks --data D --avatar A --detector NAME  # ℓ_i of Eq. 6 for that detector -> A
    dlatrack train eval     --data D --avatar A  # held-out metrics -> A's avatar.json provenance
    dlatrack train sample                      # all of them for the sample subject -> sample_scenes/avatar

Training resumes from the last checkpoint (`--checkpoint-dir`, default cache/train/<name of A>) unless
`--fresh` is given.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import shutil
import sys
from pathlib import Path

from dlatrack_engine.device import pick_device
from dlatrack_engine.paths import SAMPLE_SCENES, cache_dir
from dlatrack_engine.train import pipeline
from dlatrack_engine.train.dam_trainer import DAMTrainConfig
from dlatrack_engine.train.experiments.registry import experiments_help, parse_experiments
from dlatrack_engine.train.lighting_trainer import LightingTrainConfig

log = logging.getLogger(__name__)

PRESETS = {
    "tiny": (pipeline.TINY_DAM, pipeline.TINY_LIGHTING),
    "sample": (pipeline.SAMPLE_DAM, pipeline.SAMPLE_LIGHTING),
    "real": (pipeline.REAL_DAM, pipeline.REAL_LIGHTING),
}
SAMPLE_DATA = Path("sample") / "lightstage"
SAMPLE_OUT = SAMPLE_SCENES / "avatar"
# Settings of the shipped sample avatar (recorded in its avatar.json with the exact commands).
SAMPLE_SETTINGS = {
    "texture_size": "128",
    "image_size": "128",
    "dam": ["--epochs", "200", "--batch-size", "8", "--lr", "2e-3", "--time-limit-minutes", "8"],
    "lighting": [
        "--epochs", "100", "--batch-size", "4", "--samples-per-epoch", "80", "--lr", "1e-3", "--lr-decay-every", "40",
        "--texture-warmup-epochs", "120", "--texture-warmup-lr", "3e-3", "--texture-warmup-lr-decay-every", "40",
        "--texture-warmup-minutes", "20", "--time-limit-minutes", "35",
    ],
    "landmarks": ["--detector", "mediapipe"],  # the detector every install has (landmarks/)
    "eval": ["--max-frames", "16", "--fit-iterations", "300", "--adapt-quality", "fast"],
}  # fmt: skip


def _command(args: argparse.Namespace) -> str:
    """The command recorded in the package's provenance: the step's own (`train sample`) or this process's."""
    return getattr(args, "recorded_command", None) or "dlatrack " + shlex.join(sys.argv[1:])


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, required=True, help="light-stage dataset folder")
    parser.add_argument("--image-size", type=int, default=128, help="train on images downsampled to this longer side")
    parser.add_argument(
        "--first-frames",
        type=int,
        default=None,
        help="use only the first N frames of the dataset (reproducible subsets)",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: CUDA if present)")
    parser.add_argument("--checkpoint-dir", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true", help="ignore and delete an existing checkpoint")


def _schedule(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--samples-per-epoch", type=int, help="random (frame, camera) pairs per epoch")
    parser.add_argument(
        "--time-limit-minutes", type=float, help="stop (with a checkpoint) after the epoch that crosses this"
    )


def _checkpoints(args: argparse.Namespace, out: Path, stage: str) -> Path:
    directory = args.checkpoint_dir or pipeline.default_checkpoint_dir(out)
    if args.fresh:
        (directory / f"{stage}.pt").unlink(missing_ok=True)
    return directory


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train an avatar (DAM, lighting model G) from a light stage")
    stages = train.add_subparsers(dest="stage", required=True)
    for add in (_add_dam, _add_lighting, _add_landmarks, _add_eval, _add_sample):
        add(stages)


def _add_dam(stages: argparse._SubParsersAction) -> None:
    dam = stages.add_parser("dam", help="train the DAM and write the avatar package")
    _common(dam)
    dam.add_argument("--out", type=Path, required=True, help="avatar package to write (folder or .zip)")
    dam.add_argument("--preset", choices=sorted(PRESETS), default="sample", help="model sizes")
    dam.add_argument("--texture-size", type=int, default=128)
    dam.add_argument("--latent-size", type=int, default=None, help="override the preset's z size")
    _schedule(dam)
    dam.add_argument("--kl-weight", type=float)
    dam.add_argument("--screen-weight", type=float, help="weight of the optional screen-space loss")
    dam.add_argument("--max-grad-norm", type=float, help="clip each step's gradient norm (default 5)")
    dam.add_argument("--holdout-cameras", default=None, help="comma-separated camera names to hold out")
    dam.add_argument("--holdout-every", type=int, default=6, help="hold out every N-th frame of each kind")
    dam.add_argument("--name", default=None, help="avatar name (default: the output folder's name)")
    dam.set_defaults(func=_run_dam)


def _add_lighting(stages: argparse._SubParsersAction) -> None:
    light = stages.add_parser("lighting", help="train G (Eq. 4-5) against the package's DAM")
    _common(light)
    light.add_argument("--out", type=Path, required=True, help="avatar package written by `train dam`")
    light.add_argument("--preset", choices=sorted(PRESETS), default=None, help="G sizes (default: keep)")
    light.add_argument(
        "--input-size", type=int, default=None, help="G's input texture size (above the texture size: finer features)"
    )
    light.add_argument(
        "--bias-scale", type=float, help="units of G's bias output (models/lighting.py; default: keep / the preset's)"
    )
    _schedule(light)
    light.add_argument("--lr-decay-every", type=int)
    light.add_argument("--texture-warmup-epochs", type=int, help="texture-space warm-up of G (not in the paper)")
    light.add_argument("--texture-warmup-lr", type=float)
    light.add_argument("--texture-warmup-minutes", type=float)
    light.add_argument("--texture-warmup-lr-decay-every", type=int, help="x0.25 every N warm-up epochs")
    light.add_argument(
        "--experiment",
        action="append",
        metavar="NAME=VALUE",
        help=f"a measured, not shipped variant of G's training (repeatable; train/experiments/): {experiments_help()}",
    )
    light.set_defaults(func=_run_lighting)


def _add_landmarks(stages: argparse._SubParsersAction) -> None:
    marks = stages.add_parser(
        "landmarks", help="calibrate the mesh landmarks ℓ_i (Eq. 6) for a landmark detector on the light stage"
    )
    _common(marks)
    marks.add_argument("--avatar", type=Path, required=True, help="avatar package trained on this light stage")
    marks.add_argument("--detector", default="auto", help="face-alignment, mediapipe or auto (as `dlatrack track`)")
    marks.add_argument("--landmark-weights", default=None, help="folder with face-alignment's weights")
    marks.set_defaults(func=_run_landmarks, image_size=None)  # detect at the captured size


def _add_eval(stages: argparse._SubParsersAction) -> None:
    ev = stages.add_parser("eval", help="held-out DAM / G / SH / no-lighting metrics of a package")
    _common(ev)
    ev.add_argument("--avatar", type=Path, required=True)
    ev.add_argument("--max-frames", type=int, default=12, help="frames per evaluation set (evenly spaced)")
    ev.add_argument("--fit-iterations", type=int, default=100, help="light-code fit for unseen patterns")
    ev.add_argument(
        "--adapt-quality",
        choices=("fast", "paper", "none"),
        default="fast",
        help="registration preset whose Algorithm 1 schedule adapts G to unseen patterns ('none': skip)",
    )
    ev.set_defaults(func=_run_eval)


def _add_sample(stages: argparse._SubParsersAction) -> None:
    sample = stages.add_parser("sample", help="train and evaluate the sample avatar (all stages)")
    sample.add_argument("--data", type=Path, default=None, help="default: <cache>/sample/lightstage")
    sample.add_argument("--out", type=Path, default=SAMPLE_OUT)
    sample.add_argument("--device", default=None)
    sample.add_argument("--first-frames", type=int, default=None, help="use only the first N dataset frames")
    sample.add_argument("--fresh", action="store_true")
    sample.add_argument("--name", default="sample", help="avatar name (e.g. sample_subject1 for another subject)")
    sample.set_defaults(func=_run_sample)


def _run_dam(args: argparse.Namespace) -> int:
    dam_sizes, light_sizes = PRESETS[args.preset]
    dam_sizes = dict(dam_sizes)
    if args.latent_size:
        dam_sizes["latent_size"] = args.latent_size
    cfg = pipeline.train_config_from(DAMTrainConfig, vars(args))
    holdout = args.holdout_cameras.split(",") if args.holdout_cameras else None
    pipeline.run_dam_stage(
        args.data, args.out, args.texture_size, args.image_size, dam_sizes, light_sizes, cfg,
        pick_device(args.device), holdout, args.holdout_every, _checkpoints(args, args.out, "dam"),
        _command(args), args.name or args.out.stem, first_frames=args.first_frames,
    )  # fmt: skip
    return 0


def _run_lighting(args: argparse.Namespace) -> int:
    try:
        experiments = parse_experiments(args.experiment)
    except ValueError as error:
        raise SystemExit(f"dlatrack train lighting: {error}") from None
    cfg = pipeline.train_config_from(LightingTrainConfig, {**vars(args), **experiments.train_overrides})
    pipeline.run_lighting_stage(
        args.data, args.out, args.image_size, _lighting_sizes(args, experiments.lighting_overrides), cfg,
        pick_device(args.device), _checkpoints(args, args.out, "lighting"), _command(args),
        first_frames=args.first_frames, input_size=args.input_size, experiments=experiments,
    )  # fmt: skip
    return 0


def _lighting_sizes(args: argparse.Namespace, overrides: dict) -> dict | None:
    """G's sizes: None keeps the package's G; a preset, an explicit size or an experiment's setting of G
    starts from the preset's (the sample's by default)."""
    if not (args.preset or args.input_size is not None or args.bias_scale is not None or overrides):
        return None
    sizes = dict(PRESETS[args.preset or "sample"][1])
    if args.bias_scale is not None:
        sizes["bias_scale"] = args.bias_scale
    return {**sizes, **overrides}


def _run_eval(args: argparse.Namespace) -> int:
    rows = pipeline.run_evaluation(
        args.data,
        args.avatar,
        args.image_size,
        pick_device(args.device),
        _command(args),
        max_frames=args.max_frames,
        fit_iterations=args.fit_iterations,
        first_frames=args.first_frames,
        adapt_quality=None if args.adapt_quality == "none" else args.adapt_quality,
    )
    json.dump(rows, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def _run_landmarks(args: argparse.Namespace) -> int:
    from dlatrack_engine.landmarks import create_detector

    detector = create_detector(args.detector, "cpu", args.landmark_weights)
    report = pipeline.run_landmark_calibration(
        args.data, args.avatar, args.image_size, detector, _command(args), first_frames=args.first_frames
    )
    json.dump(report, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def _short(path: Path) -> Path:
    """`path` relative to the working directory when inside it (no machine-specific prefix in provenance)."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _run_sample(args: argparse.Namespace) -> int:
    """Every stage for the sample subject, each run as the recorded command `dlatrack train <stage> ...`
    (so avatar.json's provenance holds commands that reproduce it), by calling the stage directly."""
    data, out = _short(args.data or cache_dir() / SAMPLE_DATA), _short(args.out)  # the commands go in avatar.json
    parser = argparse.ArgumentParser(prog="dlatrack")
    register(parser.add_subparsers(dest="command", required=True))
    if args.fresh and out.exists():
        shutil.rmtree(out)
    for step in _sample_steps(args, data, out):
        log.info("running: dlatrack %s", shlex.join(step))
        stage_args = parser.parse_args(step)
        stage_args.recorded_command = "dlatrack " + shlex.join(step)
        code = stage_args.func(stage_args)
        if code:
            return code
    return 0


def _sample_steps(args: argparse.Namespace, data: Path, out: Path) -> list[list[str]]:
    """The argument lists of `train dam`, `lighting`, `landmarks` and `eval` for the sample avatar."""
    s = SAMPLE_SETTINGS
    fresh = ["--fresh"] if args.fresh else []
    device = ["--device", args.device] if args.device else []
    first = ["--first-frames", str(args.first_frames)] if args.first_frames else []
    common = ["--data", str(data), "--image-size", s["image_size"], *first, *device, *fresh]
    return [
        ["train", "dam", *common, "--out", str(out), "--texture-size", s["texture_size"], *s["dam"],
         "--name", args.name],
        ["train", "lighting", *common, "--out", str(out), *s["lighting"]],
        ["train", "landmarks", "--data", str(data), *first, *s["landmarks"], "--avatar", str(out)],
        ["train", "eval", *common, "--avatar", str(out), *s["eval"]],
    ]  # fmt: skip
