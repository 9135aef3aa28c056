"""The compute job kinds the engine runs: `track`, `adapt` (the registration pipeline) and `selftest`.

`track`/`adapt` call `dlatrack_engine.fit.pipeline.track_video` / `adapt_video_lighting` through `run_pipeline`,
the one small adapter between the server and the pipeline: it rebuilds the `TrackOptions` checked at
submission (`option_values.check_track_options`), turns pipeline progress into events, and pipeline
exceptions into structured job errors.

`selftest` is a real, cheap job that exercises the queue, per-frame atomic writes, streaming, cancel and
resume without a trained avatar: for frame i it computes the dominant eigenpair of a seeded symmetric
matrix by power iteration and checks it against LAPACK. Its frames are not tracking results and its
manifest says `kind: selftest`, so nothing can mistake them for one.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from dlatrack_engine.server.jobqueue import JobContext, JobError, Runner

log = logging.getLogger(__name__)
# Job-level messages use a logger outside `dlatrack_engine.server`, so they reach clients as `log` events
# the same way the pipeline's messages do.
job_log = logging.getLogger("dlatrack_engine.jobs.selftest")

SELFTEST_LIMITS = {"frames": (1, 10000), "size": (2, 512), "frame_seconds": (0.0, 10.0)}


def _number(params: Mapping[str, Any], key: str, default: float, integer: bool) -> float:
    value = params.get(key, default)
    low, high = SELFTEST_LIMITS[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
        raise JobError("bad_argument", f"selftest '{key}' must be {'an integer' if integer else 'a number'}")
    if not low <= value <= high:
        raise JobError("bad_argument", f"selftest '{key}' = {value} outside [{low}, {high}]")
    return value


def check_selftest_params(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "frames": int(_number(params, "frames", 10, True)),
        "size": int(_number(params, "size", 32, True)),
        "frame_seconds": float(_number(params, "frame_seconds", 0.0, False)),
        "stream_results": bool(params.get("stream_results", True)),
    }


def dominant_eigenpair(index: int, size: int, iterations: int = 200) -> tuple[np.ndarray, float, float]:
    """Power iteration on a seeded SPD matrix -> (eigenvector, eigenvalue, |λ - λ_lapack| / λ_lapack)."""
    rng = np.random.default_rng(index)
    a = rng.standard_normal((size, size))
    matrix = a @ a.T / size + np.eye(size)
    vector = np.ones(size) / np.sqrt(size)
    for _ in range(iterations):
        vector = matrix @ vector
        vector /= np.linalg.norm(vector)
    value = float(vector @ matrix @ vector)
    reference = float(np.linalg.eigvalsh(matrix)[-1])
    return vector.astype(np.float32), value, abs(value - reference) / reference


def run_selftest(ctx: JobContext) -> dict[str, Any]:
    params = check_selftest_params(ctx.params)
    total, computed, skipped, worst = params["frames"], 0, 0, 0.0
    ctx.folder.update_manifest(frames=list(range(total)))
    for index in range(total):
        if ctx.cancel.is_set():
            break
        if ctx.folder.has_frame(index):
            skipped += 1  # done before a restart: never recomputed
            continue
        start = time.monotonic()
        vector, value, error = dominant_eigenpair(index, params["size"])
        worst = max(worst, error)
        ctx.folder.write_frame(
            index,
            {"eigenvector": vector, "eigenvalue": np.float32(value), "relative_error": np.float32(error)},
            track=False,
        )
        computed += 1
        ctx.progress("selftest", index + 1, total, loss=error, message=f"frame {index}")
        remaining = params["frame_seconds"] - (time.monotonic() - start)
        if remaining > 0:
            ctx.cancel.wait(remaining)  # pacing for tests of cancel/kill; wakes at once on cancel
    job_log.info(
        "selftest: computed %d frames, skipped %d already done (max relative error %.2e)", computed, skipped, worst
    )
    return {"frames": total, "computed": computed, "skipped": skipped, "max_relative_error": worst}


# ---------------------------------------------------------------------------------------------------------
def load_pipeline() -> Any:
    try:
        from dlatrack_engine.fit import pipeline
    except ImportError as exc:
        raise JobError(
            "unavailable", f"the tracking pipeline (dlatrack_engine.fit.pipeline) is not available: {exc}"
        ) from exc
    return pipeline


def _summary_dict(summary: Any) -> dict[str, Any]:
    if summary is None:
        return {}
    if dataclasses.is_dataclass(summary):
        summary = dataclasses.asdict(summary)
    if not isinstance(summary, Mapping):
        return {"summary": str(summary)}
    return {str(k): (str(v) if isinstance(v, Path) else v) for k, v in summary.items()}


def run_pipeline(ctx: JobContext, get_avatar: Callable[[str], Any], adapt_only: bool) -> dict[str, Any]:
    """The adapter: call track_video/adapt_video_lighting with this job's folder; the pipeline skips done frames."""
    pipeline = load_pipeline()
    try:  # checked once, at submission (`option_values.check_track_options`): only rebuilt here
        options = pipeline.TrackOptions(**ctx.params.get("options", {}))
    except (TypeError, ValueError) as exc:  # a job queued by an engine whose options had other fields
        raise JobError("bad_argument", f"the job's stored track options do not fit this engine: {exc}") from exc
    avatar = get_avatar(ctx.params["avatar_path"]).avatar
    video = Path(ctx.params["video"])
    function = pipeline.adapt_video_lighting if adapt_only else pipeline.track_video

    def on_progress(event: Any) -> None:
        ctx.progress(str(event.stage), int(event.frame), int(event.total), event.loss, str(event.message or ""))

    if ctx.resumed:
        ctx.log(f"resuming: {len(ctx.folder.frames_done())} frames already in {ctx.folder.root}")
    from dlatrack_engine.landmarks.base import LandmarkError
    from dlatrack_engine.video.reader import VideoError
    from dlatrack_engine.wire.jobfolder import JobFolderError
    from dlatrack_engine.wire.lighting_folder import LightingFolderError

    # The pipeline's own error types become the job's error codes; anything else is a bug (internal_error).
    try:
        summary = function(video, avatar, ctx.folder.root, options, progress=on_progress, cancel=ctx.cancel)
    except FileNotFoundError as exc:
        raise JobError("not_found", str(exc)) from exc
    except VideoError as exc:
        raise JobError("unreadable_video", str(exc)) from exc
    except LandmarkError as exc:
        raise JobError("landmarks_failed", str(exc)) from exc
    except JobFolderError as exc:
        raise JobError("bad_output_folder", str(exc)) from exc
    except LightingFolderError as exc:  # the stored lighting changed after the request was accepted
        raise JobError("bad_lighting", str(exc)) from exc
    return _summary_dict(summary)


def build_runners(get_avatar: Callable[[str], Any]) -> dict[str, Runner]:
    return {
        "selftest": run_selftest,
        "track": lambda ctx: run_pipeline(ctx, get_avatar, adapt_only=False),
        "adapt": lambda ctx: run_pipeline(ctx, get_avatar, adapt_only=True),
    }
