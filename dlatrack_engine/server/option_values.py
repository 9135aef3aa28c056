"""Range checks on the track options a client sends, so that a bad value is a `bad_argument` reply at
submission, not an `internal_error` minutes into the job (the pipeline's dataclass checks types and names,
not every range). Also the frame range against the video's length, once the video has been probed."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from dlatrack_engine.server.jobqueue import JobError

MAX_INDEX = 10_000_000  # frame indices, strides
MAX_KEY_FRAMES = 100_000
MAX_BATCH = 4096


def _fail(name: str, value: Any, wanted: str) -> JobError:
    return JobError("bad_argument", f"track option '{name}' = {value!r}: must be {wanted}")


def _int_in(options: Mapping[str, Any], name: str, low: int, high: int, optional: bool = False) -> None:
    if name not in options or (optional and options[name] is None):
        return
    value = options[name]
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(name, value, f"an integer in [{low}, {high}]" + (" or null" if optional else ""))


def _number(options: Mapping[str, Any], name: str, positive: bool) -> None:
    value = options.get(name)
    if value is None:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or (value <= 0 if positive else value < 0):
        raise _fail(name, value, ("a finite number > 0" if positive else "a finite number >= 0") + " or null")


def check_option_values(options: Mapping[str, Any]) -> None:
    """Raise `bad_argument` naming the option for any value outside what the pipeline can run."""
    from dlatrack_engine.landmarks import DETECTORS

    _int_in(options, "key_frames", 0, MAX_KEY_FRAMES)
    _int_in(options, "start", 0, MAX_INDEX)
    _int_in(options, "stop", 1, MAX_INDEX, optional=True)
    _int_in(options, "stride", 1, MAX_INDEX)
    _int_in(options, "batch_size", 1, MAX_BATCH, optional=True)
    _number(options, "focal", positive=True)
    _number(options, "flow_weight", positive=False)
    start, stop = options.get("start", 0), options.get("stop")
    if stop is not None and stop <= start:
        raise _fail("stop", stop, f"greater than 'start' ({start}): the range [start, stop) selects no frame")
    if "detector" in options and options["detector"] not in DETECTORS:
        raise _fail("detector", options["detector"], f"one of {list(DETECTORS)}")


def check_frame_range(options: Mapping[str, Any], frame_count: int | None, video: str) -> None:
    """`start` must fall inside the video when its length is known (raw streams do not say)."""
    start = options.get("start", 0)
    if frame_count is not None and start >= frame_count:
        raise JobError(
            "bad_argument",
            f"track option 'start' = {start} is past the end of '{video}' ({frame_count} frames, 0-{frame_count - 1})",
        )
