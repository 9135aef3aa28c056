"""One adapted lighting reused across takes (issue 27): does take B tracked with take A's lighting match take
B tracked with its own adaptation, and how much time does skipping step 2 save?

    python -m bench.bench_lighting_reuse --take-a cache/sample/clips/warm_key_cool_fill/frames \
        --take-b out/take_b/clips/warm_key_cool_fill/frames --out out/lighting_reuse [--record]

Take B is the same subject under the same set-up with another performance (`dlatrack make-sample
--performance-seed 1`). Three jobs: `adapt` on A (steps 1-2; `--lighting-a DIR` reuses a lighting adapted on A
before instead), `track` B with its own adaptation, `track` B `--lighting-from` A (step 2 skipped, B's l and key
poses refitted with A's φ fixed: step2.refine_key_poses); `--reuse-iterations 80,40` adds a reused job per count
with that many p_k iterations instead of the schedule's (rounds x model_iterations). Every B job is scored with
`dlatrack eval` (PSNR on the face masks, vertex error against gt.npz). `--record` writes the section of
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.harness import machine_description, markdown_table, write_section

log = logging.getLogger("bench_lighting_reuse")
TITLE = "Lighting adapted once, reused on another take (issue 27)"


@contextmanager
def _pose_iterations(count: int | None) -> Iterator[None]:
    """Jobs started inside run the p_k-only refinement `count` iterations (None: the preset's). A bench-only
    switch: the iteration count is a schedule field, and TrackOptions builds the schedule from its preset."""
    from dlatrack_engine.fit.pipeline import TrackOptions

    original = TrackOptions.schedule

    def schedule(self):
        chosen = original(self)
        chosen.step2.reuse_pose_iterations = count or chosen.step2.reuse_pose_iterations
        return chosen

    TrackOptions.schedule = schedule
    try:
        yield
    finally:
        TrackOptions.schedule = original


def run_jobs(take_a: Path, take_b: Path, out: Path, avatar, quality: str,
             reuse_iterations: tuple[int, ...] = (), lighting_a: Path | None = None) -> dict[str, dict]:
    """-> {"own": summary+metrics, "reused": summary+metrics, "reused_N": ..., "adapt": summary or None}. `out`
    must be new: a resumed job reports only the seconds of what it recomputed."""
    from dlatrack_engine.fit.pipeline import TrackOptions, adapt_video_lighting, track_video
    from dlatrack_engine.metrics.evaluate import evaluate_job

    if out.exists():
        raise SystemExit(f"{out}: exists; the timings need fresh jobs (remove it or choose another --out)")
    # No preview.mp4 (issue 21): "job s" sums the pipeline's stages, measured before the preview existed.
    base = {"quality": quality, "write_overlays": False, "write_preview": False}  # on the avatar's device
    if lighting_a is None:
        adapt = vars(adapt_video_lighting(take_a, avatar, out / "adapt_a", TrackOptions(**base)))
    results: dict[str, dict] = {"adapt": None if lighting_a else adapt}
    reuse = {"lighting_from": str((lighting_a or out / "adapt_a").resolve())}
    jobs = [("own", {}, None), ("reused", reuse, None), *((f"reused_{n}", reuse, n) for n in reuse_iterations)]
    for name, extra, iterations in jobs:
        with _pose_iterations(iterations):
            summary = vars(track_video(take_b, avatar, out / f"track_b_{name}", TrackOptions(**base, **extra)))
        summary["metrics"] = evaluate_job(out / f"track_b_{name}", avatar, csim=False)
        summary["pose_iterations"] = iterations
        results[name] = summary
    return results


def report(results: dict[str, dict], quality: str = "fast") -> str:
    from dlatrack_engine.fit.schedule import Schedule
    from dlatrack_engine.fit.step2 import pose_iterations

    own = results["own"]
    default = pose_iterations(Schedule.preset(quality))
    rows, gaps = [], []
    for name, job in results.items():
        if name == "adapt":
            continue
        m, s = job["metrics"], job["seconds"]
        label = "own adaptation (steps 1-3)" if name == "own" else (
            f"lighting reused from take A, l and p_k refitted, {job['pose_iterations'] or default} p_k it (steps 1, 3)")
        rows.append([label, f"{m['psnr']:.2f}", f"{m['ssim']:.3f}", f"{m['vertex_mm']:.2f}", f"{m['aligned_mm']:.2f}",
                     f"{m['reprojection_px']:.2f}", f"{s.get('adapt', 0.0):.1f}",
                     f"{sum(s.values()):.0f}"])  # fmt: skip
        if name != "own":
            gaps.append(f"{job['pose_iterations'] or default} it: PSNR {m['psnr'] - own['metrics']['psnr']:+.2f} dB, "
                        f"vertex error {m['vertex_mm'] - own['metrics']['vertex_mm']:+.2f} mm, adapt stage "
                        f"{s.get('adapt', 0.0):.0f} s instead of {own['seconds'].get('adapt', 0.0):.0f} s")
    header = ["take B tracked with", "PSNR dB", "SSIM", "vertex mm", "aligned mm", "reprojection px", "adapt s",
              "job s"]
    adapt = results["adapt"]
    adapted = ("a lighting adapted on it before (--lighting-a)" if adapt is None
               else f"{adapt['seconds'].get('adapt', 0.0):.0f} s (once per room)")
    return (
        markdown_table(header, rows) + "\n\nReused − own: " + "; ".join(gaps) + ". \"adapt s\" is step 2 for "
        f"the own row and the refit of l and p_k for the reused ones. Take A: {adapted}.\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--take-a", type=Path, required=True)
    parser.add_argument("--take-b", type=Path, required=True)
    parser.add_argument("--avatar", default="sample_scenes/avatar")
    parser.add_argument("--out", type=Path, default=Path("out/lighting_reuse"))
    parser.add_argument("--lighting-a", type=Path, default=None,
                        help="a lighting (or job) folder adapted on take A before: A is not adapted again")
    parser.add_argument("--quality", default="fast")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reuse-iterations", default="",
                        help="comma-separated p_k iteration counts: one more reused job each (cheaper options)")
    parser.add_argument("--record", action="store_true", help="write the section of bench/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dlatrack_engine.avatar.runtime import Avatar

    avatar = Avatar.load(args.avatar, args.device)
    counts = tuple(int(n) for n in args.reuse_iterations.split(",") if n.strip())
    body = report(run_jobs(args.take_a, args.take_b, args.out, avatar, args.quality, counts, args.lighting_a),
                  args.quality)
    print(body)
    if args.record:
        command = (f"python -m bench.bench_lighting_reuse --take-a {args.take_a} --take-b {args.take_b} "
                   f"--out {args.out} --quality {args.quality}"
                   + (f" --reuse-iterations {args.reuse_iterations}" if counts else "")
                   + (f" --lighting-a {args.lighting_a}" if args.lighting_a else "") + " --record")  # fmt: skip
        write_section(TITLE, command, body, machine=machine_description(args.device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
