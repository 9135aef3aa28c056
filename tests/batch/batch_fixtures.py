"""Per-clip runners for the batch tests. They run inside Ray workers, which import this module by name
(the test puts tests/batch and tests/fit on the workers' PYTHONPATH).

`tiny_track` is the real `track_clip` with the fit tests' TINY schedule and their replayed landmarks (the
clip folder's marks.npy): a track of 6 frames in seconds. `kill_once_track` also kills its own worker, once
per clip named `*-kill`, as soon as step 3 has written its first batch: Ray's retry must resume from there.
"""

from __future__ import annotations

import dataclasses
import os
import signal
from pathlib import Path

import numpy as np
from fit_fixtures import TINY, ReplayDetector

from dlatrack_engine.batch.table import ClipResult
from dlatrack_engine.batch.task import ClipJob, Report, track_clip
from dlatrack_engine.fit.pipeline import Runtime, TrackOptions

KILLED_MARK = ".killed"  # in the job folder: the worker was killed once


@dataclasses.dataclass
class TinyOptions(TrackOptions):
    def schedule(self):
        return TINY


def _tiny_job(job: ClipJob) -> ClipJob:
    fields = {f.name: getattr(job.options, f.name) for f in dataclasses.fields(TrackOptions)}
    return dataclasses.replace(job, options=TinyOptions(**fields))


def _replay(job: ClipJob) -> Runtime | None:
    marks_file = Path(job.clip) / "marks.npy"
    return Runtime(landmark_detector=ReplayDetector(np.load(marks_file))) if marks_file.exists() else None


def tiny_track(job: ClipJob, report: Report) -> ClipResult:
    return track_clip(_tiny_job(job), report, _replay(job))


def kill_once_track(job: ClipJob, report: Report) -> ClipResult:
    mark = Path(job.job_dir) / KILLED_MARK

    def report_or_die(done: int, total: int) -> None:
        report(done, total)
        if job.job_dir.endswith("-kill") and 0 < done < total and not mark.exists():
            mark.touch()
            os.kill(os.getpid(), signal.SIGKILL)

    return track_clip(_tiny_job(job), report_or_die, _replay(job))
