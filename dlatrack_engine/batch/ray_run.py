"""The Ray side of `dlatrack batch`: start or join Ray, run one task per clip, gather the table.

Each clip is one Ray task asking for `cpus_per_clip` CPUs and `gpus_per_clip` GPUs (a fraction lets 2-4
clips share a GPU); Ray retries a task whose worker died (`retries`), and the retry resumes from the job
folder. Tasks report frames to a tiny actor, so one overall bar works on a cluster as well as here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from dlatrack_engine.batch.clips import Clip
from dlatrack_engine.batch.jobs import finished_row
from dlatrack_engine.batch.table import ClipResult, write_batch_json
from dlatrack_engine.batch.task import ClipJob, ClipRunner, run_clip, track_clip
from dlatrack_engine.fit.pipeline import TrackOptions

log = logging.getLogger(__name__)
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20  # tasks pass paths and table rows, not frames
POLL_SECONDS = 0.5

# (clips ended + the running clips' fractions done, rows so far) -> None
Progress = Callable[[float, list[ClipResult]], None]


class BatchError(RuntimeError):
    """The batch as a whole cannot run (the clips one by one fail into their rows instead)."""


@dataclass
class BatchPlan:
    clips: list[Clip]
    out_dir: Path
    avatar: str
    options: TrackOptions
    gpus_per_clip: float | None = None  # None: 1 where the cluster has GPUs, else 0
    cpus_per_clip: float = 1.0
    retries: int = 2  # new tries of a task whose worker died


@dataclass
class RaySettings:
    address: str | None = None  # None: a local Ray with this machine's cores and GPUs
    local_cpus: int | None = None
    worker_logs: bool = False  # print the workers' logs here (Ray's log_to_driver)


@contextlib.contextmanager
def ray_session(settings: RaySettings) -> Iterator[Any]:
    """Ray started here (or joined at `address`) for the block, and shut down after it."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError as error:
        raise BatchError(f"Ray is not installed ({error}): rerun install.py, or pip install ray>=2.58") from error

    common = dict(log_to_driver=settings.worker_logs, logging_level=logging.WARNING, configure_logging=False)
    try:
        if settings.address:
            ray.init(address=settings.address, **common)
        else:
            ray.init(num_cpus=settings.local_cpus, include_dashboard=False,
                     object_store_memory=LOCAL_OBJECT_STORE_BYTES, **common)
    except (ConnectionError, RuntimeError, ValueError) as error:
        where = f"the Ray cluster at '{settings.address}'" if settings.address else "a local Ray"
        raise BatchError(f"could not start or join {where}: {error}") from error
    try:
        yield ray
    finally:
        ray.shutdown()


class _Board:
    """Frames done per running clip, written by the tasks and read by the driver's bar."""

    def __init__(self) -> None:
        self.fractions: dict[str, float] = {}

    def update(self, job: str, done: int, total: int) -> None:
        self.fractions[job] = done / total if total else 0.0

    def snapshot(self) -> dict[str, float]:
        return dict(self.fractions)


def _clip_task(runner: ClipRunner, job: ClipJob, board) -> ClipResult:
    """The Ray task: `run_clip` with the progress sent to the board at most twice a second."""
    last = [0.0]
    name = Path(job.job_dir).name

    def report(done: int, total: int) -> None:
        now = time.monotonic()
        if now - last[0] >= POLL_SECONDS or done >= total:
            last[0] = now
            board.update.remote(name, done, total)

    return run_clip(runner, job, report)


def _resources(ray, plan: BatchPlan) -> tuple[float, float]:
    """(CPUs, GPUs) per clip, checked against what the cluster has (Ray would wait forever otherwise)."""
    have = ray.cluster_resources()
    gpus = plan.gpus_per_clip if plan.gpus_per_clip is not None else (1.0 if have.get("GPU", 0) else 0.0)
    if gpus > have.get("GPU", 0):
        raise BatchError(f"--gpus-per-clip {gpus:g}: the cluster has {have.get('GPU', 0):g} GPUs")
    if plan.cpus_per_clip > have.get("CPU", 0):
        raise BatchError(f"--cpus-per-clip {plan.cpus_per_clip:g}: the cluster has {have.get('CPU', 0):g} CPUs")
    return plan.cpus_per_clip, gpus


def _batch_info(plan: BatchPlan, settings: RaySettings, started: float) -> dict[str, Any]:
    return {"avatar": plan.avatar, "out": str(plan.out_dir), "address": settings.address or "local",
            "cpus_per_clip": plan.cpus_per_clip, "gpus_per_clip": plan.gpus_per_clip, "retries": plan.retries,
            "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
            "seconds": round(time.time() - started, 2)}


def run_batch(plan: BatchPlan, settings: RaySettings, avatar_name: str, progress: Progress | None = None,
              runner: ClipRunner = track_clip) -> list[ClipResult]:
    """Track every clip of `plan` into `out_dir/<job>` and write `out_dir/batch.json`; -> the rows in clip
    order. Finished jobs are skipped, interrupted ones resume; `runner` is the per-clip work (tests, bench)."""
    started = time.time()
    plan.out_dir.mkdir(parents=True, exist_ok=True)
    rows = [finished_row(c.path, plan.out_dir / c.job, plan.options, avatar_name)
            or ClipResult(str(c.path), c.job) for c in plan.clips]
    info = _batch_info(plan, settings, started)
    if all(r.state != "pending" for r in rows):  # nothing to do: no Ray started
        write_batch_json(plan.out_dir, rows, {**info, "seconds": round(time.time() - started, 2)})
        return rows
    with ray_session(settings) as ray:
        cpus, gpus = _resources(ray, plan)
        info.update(cpus_per_clip=cpus, gpus_per_clip=gpus)
        board = ray.remote(num_cpus=0)(_Board).remote()
        task = ray.remote(_clip_task).options(num_cpus=cpus, num_gpus=gpus, max_retries=plan.retries)
        pending = {}
        for index, (clip, row) in enumerate(zip(plan.clips, rows, strict=True)):
            if row.state == "pending":
                job = ClipJob(str(clip.path), str(plan.out_dir / clip.job), str(Path(plan.avatar).resolve()),
                              plan.options, "cuda" if gpus else "cpu", max(1, int(cpus)))
                pending[task.remote(runner, job, board)] = index

        def save() -> None:
            write_batch_json(plan.out_dir, rows, {**info, "seconds": round(time.time() - started, 2)})

        try:
            _gather(ray, pending, rows, board, progress, save)
        except KeyboardInterrupt:
            for ref, index in pending.items():
                ray.cancel(ref, force=True)
                rows[index].state = "interrupted"
            raise
        finally:
            save()
    return rows


def _gather(ray, pending: dict, rows: list[ClipResult], board, progress: Progress | None,
            save: Callable[[], object]) -> None:
    """Wait for the tasks, putting each row in place as it ends (a dead worker's last error included)."""
    from ray.exceptions import RayError

    ended = sum(r.state != "pending" for r in rows)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_SECONDS)
        for ref in ready:
            index = pending.pop(ref)
            try:
                rows[index] = ray.get(ref)
            except RayError as error:
                rows[index].state = "failed"
                rows[index].error = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
            ended += 1
        if ready:
            save()
        if progress is not None:
            running = ray.get(board.snapshot.remote())
            fractions = sum(running.get(rows[i].job, 0.0) for i in pending.values())
            progress(ended + fractions, rows)
