"""One adapted lighting reused across takes (issue 27): does take B tracked with take A's lighting match take
B tracked with its own adaptation, and how much time does skipping step 2 save?

    python -m bench.bench_lighting_reuse --take-a cache/sample/clips/warm_key_cool_fill/frames \
        --take-b out/take_b/clips/warm_key_cool_fill/frames --out out/lighting_reuse [--record]

Take B is the same subject under the same set-up with another performance (`dlatrack make-sample
--performance-seed 1`). Three jobs: `adapt` on A (steps 1-2), `track` B with its own adaptation, `track` B
`--lighting-from` A; both B jobs are scored with `dlatrack eval` (PSNR on the face masks, vertex error
against gt.npz). `--record` writes the section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from bench.harness import machine_description, markdown_table, write_section

log = logging.getLogger("bench_lighting_reuse")
TITLE = "Lighting adapted once, reused on another take (issue 27)"


def run_jobs(take_a: Path, take_b: Path, out: Path, avatar, quality: str) -> dict[str, dict]:
    """-> {"own": summary+metrics, "reused": summary+metrics, "adapt": summary}. `out` must be new: a
    resumed job reports only the seconds of what it recomputed."""
    from dlatrack_engine.fit.pipeline import TrackOptions, adapt_video_lighting, track_video
    from dlatrack_engine.metrics.evaluate import evaluate_job

    if out.exists():
        raise SystemExit(f"{out}: exists; the timings need fresh jobs (remove it or choose another --out)")
    # No preview.mp4 (issue 21): "job s" sums the pipeline's stages, measured before the preview existed.
    base = {"quality": quality, "write_overlays": False, "write_preview": False}  # on the avatar's device
    adapt = adapt_video_lighting(take_a, avatar, out / "adapt_a", TrackOptions(**base))
    results: dict[str, dict] = {"adapt": vars(adapt)}
    for name, extra in (("own", {}), ("reused", {"lighting_from": str((out / "adapt_a").resolve())})):
        summary = vars(track_video(take_b, avatar, out / f"track_b_{name}", TrackOptions(**base, **extra)))
        summary["metrics"] = evaluate_job(out / f"track_b_{name}", avatar, csim=False)
        results[name] = summary
    return results


def report(results: dict[str, dict]) -> str:
    own, reused = results["own"], results["reused"]
    rows = []
    for name, job in (("own adaptation (steps 1-3)", own), ("lighting reused from take A (steps 1, 3)", reused)):
        m, s = job["metrics"], job["seconds"]
        total = sum(s.values())
        rows.append([name, f"{m['psnr']:.2f}", f"{m['ssim']:.3f}", f"{m['vertex_mm']:.2f}", f"{m['aligned_mm']:.2f}",
                     f"{s.get('adapt', 0.0):.1f}", f"{total:.0f}"])  # fmt: skip
    d_psnr = reused["metrics"]["psnr"] - own["metrics"]["psnr"]
    d_vertex = reused["metrics"]["vertex_mm"] - own["metrics"]["vertex_mm"]
    saved = own["seconds"].get("adapt", 0.0) - reused["seconds"].get("adapt", 0.0)
    return (
        markdown_table(["take B tracked with", "PSNR dB", "SSIM", "vertex mm", "aligned mm", "step 2 s", "job s"], rows)
        + f"\n\nReused − own: PSNR {d_psnr:+.2f} dB, vertex error {d_vertex:+.2f} mm; step 2 skipped saves "
        f"{saved:.0f} s of {sum(own['seconds'].values()):.0f} s. Adapting on take A took "
        f"{results['adapt']['seconds'].get('adapt', 0.0):.0f} s (once per room).\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--take-a", type=Path, required=True)
    parser.add_argument("--take-b", type=Path, required=True)
    parser.add_argument("--avatar", default="sample_scenes/avatar")
    parser.add_argument("--out", type=Path, default=Path("out/lighting_reuse"))
    parser.add_argument("--quality", default="fast")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--record", action="store_true", help="write the section of bench/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from dlatrack_engine.avatar.runtime import Avatar

    avatar = Avatar.load(args.avatar, args.device)
    body = report(run_jobs(args.take_a, args.take_b, args.out, avatar, args.quality))
    print(body)
    if args.record:
        command = (f"python -m bench.bench_lighting_reuse --take-a {args.take_a} --take-b {args.take_b} "
                   f"--out {args.out} --quality {args.quality} --record")  # fmt: skip
        write_section(TITLE, command, body, machine=machine_description(args.device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
