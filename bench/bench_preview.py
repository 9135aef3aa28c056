"""What seeing the result costs next to tracking (issue 21): preview.mp4 (written by `dlatrack track`) and
report/ (written by `dlatrack eval`) against the tracking time of the same run, on CPU.

    python -m bench.bench_preview [--clips CLIP_VIDEO ...] [--results bench/RESULTS.md]

Each clip is tracked into a fresh folder with the `fast` preset; the pipeline times its stages and the
preview; the evaluation and the report are timed separately (`dlatrack eval` = evaluate + report).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bench.harness import machine_description, markdown_table, write_section

SHIPPED = Path("sample_scenes/clips/warm_key_cool_fill/video.mp4")
TRACKING_STAGES = ("landmarks", "init", "adapt", "track")


def measure(video: Path, avatar, out: Path) -> list[object]:
    from dlatrack_engine.fit.pipeline import TrackOptions, track_video
    from dlatrack_engine.metrics.evaluate import evaluate
    from dlatrack_engine.report.write import write_report

    summary = track_video(video, avatar, out, TrackOptions(detector="mediapipe"))
    tracking = sum(summary.seconds[s] for s in TRACKING_STAGES)
    preview = summary.seconds["preview"]
    start = time.monotonic()
    evaluation = evaluate(out, avatar, csim=False)
    evaluated = time.monotonic()
    write_report(out, evaluation)
    report = time.monotonic() - evaluated
    evaluate_s = evaluated - start
    return [video.parent.name, summary.frames, f"{tracking:.1f}", f"{preview:.1f}", f"{report:.1f}",
            f"{100 * (preview + report) / tracking:.1f} %", f"{evaluate_s:.1f}",
            f"{100 * (preview + report + evaluate_s) / tracking:.1f} %"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", type=Path, default=[SHIPPED])
    parser.add_argument("--avatar", default="sample_scenes/avatar")
    parser.add_argument("--results", default=None, help="write the table as a section of this markdown file")
    args = parser.parse_args()
    from dlatrack_engine.avatar.runtime import Avatar

    machine = machine_description("cpu")
    avatar = Avatar.load(args.avatar, "cpu")
    with tempfile.TemporaryDirectory(prefix="bench-preview-") as tmp:
        rows = [measure(clip, avatar, Path(tmp) / f"job{i}") for i, clip in enumerate(args.clips)]
    table = markdown_table(["clip", "frames", "tracking s", "preview s", "report s", "preview + report",
                            "evaluation s", "with evaluation"], rows)
    print(table)
    if args.results:
        command = "python -m bench.bench_preview --clips " + " ".join(str(c) for c in args.clips)
        write_section("Seeing the result: preview and report vs tracking time (issue 21)", command, table,
                      Path(args.results), machine)


if __name__ == "__main__":
    main()
