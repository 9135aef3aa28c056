"""The one check of the track options a client sends: `check_track_options`, called once per `track` /
`adapt` request at submission, before anything is staged, so that a bad value is a `bad_argument` reply
naming the field, not an `internal_error` minutes into the job. It checks names (unknown ones, runtime
settings), JSON types and ranges (the pipeline's dataclass checks presets, not every range), and returns the
pipeline's `TrackOptions`; the job runs from those checked fields. Once the video is probed,
`check_start_in_video` checks it against them (its length is not an option)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from dlatrack_engine.server.jobqueue import JobError

MAX_INDEX = 10_000_000  # frame indices, strides
MAX_KEY_FRAMES = 100_000
MAX_BATCH = 4096
RUNTIME_SETTINGS = {  # the pipeline's Runtime, not request options: named here only for a clearer error
    "device": "the engine's device is chosen when it starts (`dlatrack serve --device`)",
}
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "None": (type(None),),
}


def _fail(name: str, value: Any, wanted: str) -> JobError:
    return JobError("bad_argument", f"track option '{name}' = {value!r}: must be {wanted}")


def _accepts(annotation: str, value: Any) -> bool:
    kinds = tuple(
        t for name, types in _JSON_TYPES.items() if name in annotation.replace(" ", "").split("|") for t in types
    )
    if not kinds:
        return True  # an annotation this check does not understand: the dataclass itself validates
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


def _check_names_and_types(cls: type, options: Mapping[str, Any]) -> None:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for key, value in options.items():
        if key in RUNTIME_SETTINGS:
            raise JobError("bad_argument", f"track option '{key}' cannot be set by a client: {RUNTIME_SETTINGS[key]}")
        if key not in fields:
            raise JobError("bad_argument", f"unknown track option '{key}'; known: {sorted(fields)}")
        kind = fields[key].type
        annotation = kind if isinstance(kind, str) else getattr(kind, "__name__", "")
        if not _accepts(annotation, value):
            raise JobError("bad_argument", f"track option '{key}' must be {annotation}, got {type(value).__name__}")


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


def _check_ranges(options: Mapping[str, Any]) -> None:
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


def check_track_options(pipeline: Any, options: Mapping[str, Any]) -> Any:
    """The request's options as the pipeline's `TrackOptions`, or the first bad field as `bad_argument`:
    names, types, ranges, then the presets (the dataclass's own check)."""
    _check_names_and_types(pipeline.TrackOptions, options)
    _check_ranges(options)
    try:
        return pipeline.TrackOptions(**options)
    except (TypeError, ValueError) as exc:
        raise JobError("bad_argument", f"track options: {exc}") from exc


def check_start_in_video(start: int, frame_count: int | None, video: str) -> None:
    """The video, once probed, must reach the first frame asked for (raw streams do not say their length)."""
    if frame_count is not None and start >= frame_count:
        raise JobError(
            "bad_argument",
            f"track option 'start' = {start} is past the end of '{video}' ({frame_count} frames, 0-{frame_count - 1})",
        )
