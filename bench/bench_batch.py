"""`dlatrack batch` on one machine (issue 23): N clips through Ray against N sequential `dlatrack track` (+
`dlatrack eval --no-csim`, the PSNR the batch's table has) runs, and what Ray costs per task.

    python -m bench.bench_batch [--copies 2] [--frames 30] [--overhead-tasks 20] [--results bench/RESULTS.md]

Both sides are separate processes timed end to end (interpreter, imports, avatar, Ray's start for the batch).
The clips are copies of the shipped sample clip (its first --frames frames). Ray's overhead is measured with a
runner that does no work, through the batch's own task function.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import machine_description, markdown_table, write_section

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "sample_scenes" / "clips" / "warm_key_cool_fill"
AVATAR = REPO / "sample_scenes" / "avatar"


def noop_clip(job, report):
    """A runner with no work: what is left of a task is Ray's (scheduling, pickling, the row's return)."""
    from dlatrack_engine.batch.table import ClipResult

    report(1, 1)
    return ClipResult(job.clip, Path(job.job_dir).name, "completed")


def _engine(*args: str) -> float:
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "dlatrack_engine", *args], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start


def throughput(copies: int, frames: int, root: Path) -> list[list[object]]:
    clips = []
    for i in range(copies):  # frame-folder clips: the shipped clip's first `frames` frames and its calibration
        clips.append(root / "clips" / f"take{i}")
        (clips[-1] / "frames").mkdir(parents=True)
        shutil.copy(SHIPPED / "clip.json", clips[-1])
        for png in sorted((SHIPPED / "frames").glob("*.png"))[:frames]:
            shutil.copy(png, clips[-1] / "frames")
    videos = [str(c) for c in clips]
    load_sequential = os.getloadavg()[0]
    sequential = sum(_engine("track", v, "--avatar", str(AVATAR), "--out", str(root / "seq" / Path(v).name))
                     + _engine("eval", str(root / "seq" / Path(v).name), "--avatar", str(AVATAR), "--no-csim",
                               "--no-report") for v in videos)
    load_batch = os.getloadavg()[0]
    batch = _engine("batch", *map(str, clips), "--avatar", str(AVATAR), "--out", str(root / "batch"))
    rows = json.loads((root / "batch" / "batch.json").read_text())["clips"]
    frames = sum(r["frames"] for r in rows)
    task = max(r["seconds"] for r in rows)
    return [[copies, frames, f"{sequential:.0f}", f"{batch:.0f}", f"{task:.0f}", f"{sequential / batch:.2f}x",
             f"{load_sequential:.1f} / {load_batch:.1f}"]]


def overhead(tasks: int, root: Path) -> list[list[object]]:
    """Ray's start, a first task (a worker process starting), then `tasks` no-work tasks one at a time
    (latency) and all at once (throughput), in one local Ray, through the batch's own task function."""
    import ray

    from dlatrack_engine.batch.ray_run import RaySettings, _Board, _clip_task, ray_session
    from dlatrack_engine.batch.task import ClipJob
    from dlatrack_engine.fit.pipeline import TrackOptions

    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    jobs = [ClipJob(str(root / f"none{i}.mp4"), str(root / f"none{i}"), str(AVATAR), TrackOptions(), "cpu", 1)
            for i in range(tasks)]
    start = time.monotonic()
    with ray_session(RaySettings()):
        started = time.monotonic()
        board = ray.remote(num_cpus=0)(_Board).remote()
        task = ray.remote(_clip_task).options(num_cpus=1)
        ray.get(task.remote(noop_clip, jobs[0], board))
        first = time.monotonic()
        latencies = []
        for job in jobs:
            t0 = time.monotonic()
            ray.get(task.remote(noop_clip, job, board))
            latencies.append(time.monotonic() - t0)
        t0 = time.monotonic()
        ray.get([task.remote(noop_clip, job, board) for job in jobs])
        together = (time.monotonic() - t0) / tasks
    stopped = time.monotonic()
    latencies.sort()
    return [[f"{started - start:.1f}", f"{first - started:.1f}", f"{1000 * latencies[len(latencies) // 2]:.0f}",
             f"{1000 * together:.0f}", f"{stopped - first - sum(latencies) - together * tasks:.1f}", tasks]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--frames", type=int, default=30, help="frames of the shipped clip in each copy")
    parser.add_argument("--overhead-tasks", type=int, default=20)
    parser.add_argument("--results", default=None, help="write the tables as a section of this markdown file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_batch_") as tmp:
        costs = overhead(args.overhead_tasks, Path(tmp))
        speed = throughput(args.copies, args.frames, Path(tmp))
    body = (f"Throughput (`fast`, the shipped clip's first {args.frames} frames copied N times; sequential = "
            "`dlatrack track` then "
            "`dlatrack eval --no-csim --no-report` per clip, torch's default threads (2); batch = one "
            "`dlatrack batch`, 1 CPU per clip, Ray's start included):\n\n"
            + markdown_table(["N clips", "frames", "sequential s", "batch s", "slowest clip's task s",
                              "speed-up", "load avg before (seq / batch)"], speed)
            + "\n\nRay's cost (a runner that does nothing, one local Ray, the batch's task function):\n\n"
            + markdown_table(["Ray start s", "first task s (worker start)", "task alone ms (median)",
                              "task in a batch of M ms", "Ray stop s", "M"], costs))
    print(body)
    if args.results:
        write_section("Many clips at once: dlatrack batch on Ray (issue 23)",
                      f"python -m bench.bench_batch --copies {args.copies} --frames {args.frames} "
                      f"--results {args.results}", body,
                      path=Path(args.results), machine=machine_description("cpu"))


if __name__ == "__main__":
    main()
