"""The work of one Ray task: track one clip into its job folder, evaluate it, and return its table row.

Runs in a Ray worker. A worker runs many tasks one after the other, so the avatar is loaded once per
worker and device. Errors become the row's `error` (the batch goes on); a worker that dies is Ray's to retry,
and the retry resumes from the job folder.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dlatrack_engine.batch.table import ClipResult
from dlatrack_engine.fit.pipeline import ProgressEvent, Runtime, TrackOptions

log = logging.getLogger(__name__)

# (frames done, frames in the clip) -> None; the driver's overall progress bar
Report = Callable[[int, int], None]


@dataclass(frozen=True)
class ClipJob:
    clip: str  # absolute path, the same on every node (shared filesystem, docs/batch.md)
    job_dir: str
    avatar: str
    options: TrackOptions
    device: str  # "cpu" or "cuda" (the GPU Ray gave the task)
    threads: int  # torch threads: the task's CPUs


ClipRunner = Callable[[ClipJob, Report], ClipResult]
_avatars: dict[tuple[str, str], object] = {}


def _avatar(path: str, device: str):
    from dlatrack_engine.avatar.runtime import Avatar

    key = (str(Path(path).resolve()), device)
    if key not in _avatars:
        _avatars[key] = Avatar.load(path, device)
    return _avatars[key]


def track_clip(job: ClipJob, report: Report, runtime: Runtime | None = None) -> ClipResult:
    """`dlatrack track` + the PSNR of `dlatrack eval` (no CSIM, no report/) for one clip (`runtime`: a
    landmark detector instance, for tests)."""
    import torch

    from dlatrack_engine.fit.pipeline import track_video
    from dlatrack_engine.metrics.evaluate import evaluate_job

    torch.set_num_threads(job.threads)
    avatar = _avatar(job.avatar, job.device)

    def progress(event: ProgressEvent) -> None:
        if event.stage == "write":
            report(event.frame, event.total)

    runtime = Runtime(job.device, None if runtime is None else runtime.landmark_detector)
    summary = track_video(Path(job.clip), avatar, Path(job.job_dir), job.options, progress, runtime=runtime)
    metrics = evaluate_job(job.job_dir, avatar, csim=False)
    return ClipResult(job.clip, Path(job.job_dir).name, "completed", frames=summary.frames,
                      computed=summary.computed_frames, psnr=metrics["psnr"])


def run_clip(runner: ClipRunner, job: ClipJob, report: Report) -> ClipResult:
    """`runner` with its time, node and any exception put into the row, so one bad clip fails alone."""
    import ray

    start = time.monotonic()
    try:
        result = runner(job, report)
    except Exception as error:  # any error of one clip belongs in its row, not the batch's
        log.error("%s: %s", job.clip, traceback.format_exc())
        result = ClipResult(job.clip, Path(job.job_dir).name, "failed", error=f"{type(error).__name__}: {error}")
    result.seconds = time.monotonic() - start
    result.node = ray.util.get_node_ip_address()
    return result
