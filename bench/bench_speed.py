"""`dlatrack track` end to end, per stage, per machine row: CPU torch, CUDA torch, CUDA nvdiffrast (issue 20).

Each (tree, row) runs in its own subprocess, so its peak memory is its own and a crash in one row does not lose
the others. `--tree LABEL=PATH` adds a copy of the code (e.g. the previous commit, exported with `git archive`)
so that a speed-up is measured against its baseline in the same run, on the same machine, interleaved
`--repeats` times. The job is the default `dlatrack track` (fast preset, textures, overlays and preview
written); `--landmarks FILE` seeds the detections so that a machine without the detector can run it, and
ground-truth errors are reported where the clip has gt.npz, so a speed-up that costs accuracy shows.

    python -m bench.bench_speed --tree base=/tmp/code_base --repeats 2 --record
    python -m bench.bench_speed --rows cuda-torch cuda-nvdiffrast --video DIR/frames --landmarks LM --record
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "sample_scenes" / "clips" / "warm_key_cool_fill"
ROWS = {"cpu": ("cpu", "torch"), "cuda-torch": ("cuda", "torch"), "cuda-nvdiffrast": ("cuda", "nvdiffrast")}
STAGES = ("landmarks", "init", "adapt", "track", "preview")


def run_one(row: str, video: str, landmarks: str | None, out: Path, preview: bool) -> dict:
    """One tracked job in this process; -> seconds per stage, frames/s, peak memory, errors against gt."""
    import torch

    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.fit.pipeline import TrackOptions, track_video
    from dlatrack_engine.landmarks import LandmarkTrack
    from dlatrack_engine.metrics.evaluate import evaluate_job

    device, backend = ROWS[row]
    os.environ["DLATRACK_RENDER_BACKEND"] = backend
    avatar = Avatar.load(REPO / "sample_scenes" / "avatar", device)
    if landmarks:
        out.mkdir(parents=True, exist_ok=True)
        LandmarkTrack.load(landmarks).save(str(out / "landmarks.npz"))
    start = time.perf_counter()
    summary = track_video(video, avatar, out, TrackOptions(write_preview=preview))
    wall = time.perf_counter() - start
    result = {"row": row, "wall_s": wall, "frames": summary.frames, **{f"s_{k}": summary.seconds.get(k, 0.0)
                                                                       for k in STAGES}}
    result["peak_mib"] = (torch.cuda.max_memory_allocated() / 2**20 if device == "cuda"
                          else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    metrics = evaluate_job(out, avatar, csim=False)
    result.update({k: metrics[k] for k in ("psnr", "vertex_mm", "rotation_deg") if k in metrics})
    return result


def _subprocess(tree: Path, row: str, video: str, landmarks: str | None, preview: bool) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "row.json"
        # This file as a script, the tree's engine on PYTHONPATH: a baseline tree need not have this benchmark.
        command = [sys.executable, str(Path(__file__).resolve()), "--one", row, "--video", video, "--json", str(report),
                   "--job", str(Path(tmp) / "job")] + (["--landmarks", landmarks] if landmarks else [])
        command += [] if preview else ["--no-preview"]
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return {"row": row, "error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed"}
        return json.loads(report.read_text())


def _table(results: list[dict]) -> str:
    head = ("| tree | row | wall s | landmarks | step 1 | step 2 | step 3 + writing | preview | step 3 frames/s | "
            "end to end frames/s | peak MiB | PSNR dB | vertex mm | rotation ° |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in results:
        if "error" in r:
            lines.append(f"| {r['tree']} | {r['row']} | failed: {r['error']} |")
            continue
        n = r["frames"]
        lines.append(
            f"| {r['tree']} | {r['row']} | {r['wall_s']:.1f} | " + " | ".join(f"{r['s_' + s]:.1f}" for s in STAGES)
            + f" | {n / max(r['s_track'], 1e-9):.2f} | {n / r['wall_s']:.2f} | {r['peak_mib']:.0f} | "
            + " | ".join(f"{r[k]:.2f}" if k in r else "-" for k in ("psnr", "vertex_mm", "rotation_deg")) + " |")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--video", default=str(CLIP / "video.mp4"))
    p.add_argument("--landmarks", default=None, help="a landmarks.npz to seed every job with (skips detection)")
    p.add_argument("--rows", nargs="+", default=["cpu"], choices=list(ROWS))
    p.add_argument("--tree", action="append", default=[], help="LABEL=PATH: another copy of the code to time")
    p.add_argument("--repeats", type=int, default=1, help="runs of every (tree, row), interleaved")
    p.add_argument("--no-preview", action="store_true", help="skip preview.mp4 (a machine without ffmpeg)")
    p.add_argument("--record", action="store_true", help="write the table into bench/RESULTS.md")
    p.add_argument("--one", choices=list(ROWS), help=argparse.SUPPRESS)
    p.add_argument("--json", help=argparse.SUPPRESS)
    p.add_argument("--job", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        Path(args.json).write_text(json.dumps(run_one(args.one, args.video, args.landmarks, Path(args.job),
                                                      not args.no_preview)))
        return 0
    video = str(Path(args.video).resolve())
    landmarks = str(Path(args.landmarks).resolve()) if args.landmarks else None
    trees = [("this", REPO)] + [(label, Path(path).resolve()) for label, path in (t.split("=", 1) for t in args.tree)]
    results = []
    for _ in range(args.repeats):
        for label, tree in trees:
            for row in args.rows:
                result = {"tree": label, **_subprocess(tree, row, video, landmarks, not args.no_preview)}
                print(json.dumps(result), flush=True)
                results.append(result)
    table = _table(results)
    print(table)
    if args.record:
        from bench.harness import write_section

        command = "python -m bench.bench_speed " + " ".join(sys.argv[1:])
        write_section("Speed: dlatrack track end to end, per stage (issue 20)", command, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
