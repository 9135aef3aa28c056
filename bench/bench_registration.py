"""Registration on the sample wild clips: Table 1 (full method vs Ours-SH vs landmark-only) and Table 2
(ablations and the K sweep) in the paper's layout, plus stage timings, into bench/RESULTS.md.

    python -m bench.bench_registration --avatar sample_scenes/avatar [--clips sun_sky ...] [--frames 60]
        [--variants full sh landmarks no_adapt scratch K1 K12 Kall] [--quality fast] [--device cuda] [--no-csim]

Landmarks and step 1 do not depend on the variant, so they are computed once per clip (the first variant's
job folder) and copied into the others' folders, where the pipeline's resume picks them up.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from bench.harness import machine_description, markdown_table, write_section
from dlatrack_engine.metrics.cli import COLUMNS
from dlatrack_engine.paths import cache_dir

log = logging.getLogger("bench_registration")

# name -> (row label, TrackOptions overrides)
VARIANTS: dict[str, tuple[str, dict]] = {
    "full": ("full method (G adapted, K=48)", {}),
    "sh": ("same pipeline, SH lighting (Ours-SH)", {"lighting": "SH"}),
    "landmarks": ("landmark-only (step 1 alone, adapted G for the render)", {"steps": "landmarks"}),
    "no_adapt": ("without adaptation (l only, φ pre-trained)", {"adapt": False}),
    "scratch": ("without light-stage pre-training (G from scratch, K=48)", {"pretrained_lighting": False}),
    "K1": ("K=1", {"key_frames": 1}),
    "K12": ("K=12", {"key_frames": 12}),
    "Kall": ("K=all", {"key_frames": 0}),
}
TABLE1 = ("landmarks", "sh", "full")
TABLE2 = ("scratch", "no_adapt", "K1", "K12", "full", "Kall")
METRICS = COLUMNS  # the columns of `dlatrack eval`


def _clips(root: Path, names: list[str] | None) -> list[Path]:
    found = sorted(p for p in root.iterdir() if (p / "gt.npz").exists() and (p / "frames").is_dir())
    return [p for p in found if names is None or p.name in names]


def run(args: argparse.Namespace) -> dict:
    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.device import pick_device
    from dlatrack_engine.fit.pipeline import TrackOptions, track_video
    from dlatrack_engine.landmarks import LandmarkTrack
    from dlatrack_engine.metrics.evaluate import evaluate_job

    device = pick_device(args.device)
    avatar = Avatar.load(args.avatar, device)
    out_root = Path(args.out)
    results: dict[str, dict[str, dict]] = {}
    for clip in _clips(Path(args.clips_root), args.clips):
        first: Path | None = None
        for name in args.variants:
            _, overrides = VARIANTS[name]
            job = out_root / clip.name / name
            if first is not None and not (job / "init.npz").exists():
                job.mkdir(parents=True, exist_ok=True)
                for shared in ("landmarks.npz", "init.npz"):
                    shutil.copy(first / shared, job / shared)
            landmarks = Path(args.landmarks_root) / clip.name / "landmarks.npz" if args.landmarks_root else None
            if first is None and landmarks is not None and landmarks.exists() and not (job / "landmarks.npz").exists():
                job.mkdir(parents=True, exist_ok=True)
                track = LandmarkTrack.load(str(landmarks))
                n = args.frames or len(track.points)
                LandmarkTrack(track.points[:n], track.confidence[:n], track.detected[:n],
                              track.detector).save(str(job / "landmarks.npz"))
            options = TrackOptions(quality=args.quality, stop=args.frames, detector=args.detector,
                                   calibrated_landmarks=not args.default_landmarks, write_textures=False,
                                   write_overlays=False, write_preview=False, **overrides)
            start = time.monotonic()
            summary = track_video(clip / "frames", avatar, job, options)
            seconds = time.monotonic() - start
            metrics = evaluate_job(job, avatar, csim=not args.no_csim)
            metrics["seconds"] = seconds
            metrics.update({f"s_{k}": v for k, v in summary.seconds.items()})
            results.setdefault(name, {})[clip.name] = metrics
            log.info("%s / %s: %s", clip.name, name, {k: round(v, 3) for k, v in metrics.items()})
            first = first or job
        write_tables(results, args)  # after every clip, so a run cut short still leaves its tables
    return results


def _row(label: str, per_clip: dict[str, dict]) -> list[str]:
    cells = [label]
    for key, _, fmt in METRICS:
        values = [m[key] for m in per_clip.values() if key in m]
        cells.append(fmt.format(float(np.mean(values))) if values else "-")
    return cells


def write_tables(results: dict, args: argparse.Namespace) -> None:
    clips = sorted({c for r in results.values() for c in r})
    header = ["method"] + [m[1] for m in METRICS]
    note = (f"Clips: {', '.join(clips)} ({args.frames or 'all'} frames each, quality `{args.quality}`, device "
            f"`{args.device or 'auto'}`), means over clips. L2/SSIM/PSNR on the clip's face mask in 8-bit sRGB; "
            "CSIM with dlib's ResNet embedding (not ArcFace); GT errors against the clip's gt.npz.\n\n")
    flags = []
    for key, value in vars(args).items():
        if value in (None, False) or key in ("out", "results"):
            continue
        flag = "--" + key.replace("_", "-")
        flags.append(flag if value is True else f"{flag} {' '.join(value) if isinstance(value, list) else value}")
    command = "python -m bench.bench_registration " + " ".join(flags)
    rows1 = [_row(VARIANTS[n][0], results[n]) for n in TABLE1 if n in results]
    if rows1:
        write_section("Registration: Table 1 layout (sample wild clips)", command,
                      note + markdown_table(header, rows1), path=args.results,
                      machine=machine_description(args.device))
    rows2 = [_row(VARIANTS[n][0], results[n]) for n in TABLE2 if n in results]
    if rows2:
        write_section("Registration: Table 2 layout (ablations, K sweep)", command,
                      note + markdown_table(header, rows2), path=args.results,
                      machine=machine_description(args.device))
    timing = [[n, c, f"{m['seconds']:.0f}", *(f"{m.get('s_' + s, 0):.0f}" for s in ("landmarks", "init", "adapt",
                                                                                    "track"))]
              for n, per in results.items() for c, m in per.items()]
    write_section("Registration: time per clip", command,
                  markdown_table(["variant", "clip", "total s", "landmarks s", "step 1 s", "step 2 s", "step 3 s"],
                                 timing), path=args.results, machine=machine_description(args.device))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--avatar", default=str(Path(__file__).resolve().parents[1] / "sample_scenes" / "avatar"))
    p.add_argument("--clips-root", default=str(cache_dir() / "sample" / "clips"))
    p.add_argument("--clips", nargs="*", default=None)
    p.add_argument("--landmarks-root", default=None, help="precomputed <clip>/landmarks.npz (e.g. from a CPU run)")
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS))
    p.add_argument("--quality", default="fast", choices=("fast", "paper"))
    p.add_argument("--device", default=None)
    p.add_argument("--detector", default="auto")
    p.add_argument("--no-csim", action="store_true")
    p.add_argument("--default-landmarks", action="store_true", help="ignore the avatar's calibrated ℓ_i (ablation)")
    p.add_argument("--out", default=str(cache_dir() / "bench_registration"))
    p.add_argument("--results", default=None, help="markdown file to write (default bench/RESULTS.md)")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    run(args)


if __name__ == "__main__":
    main()
