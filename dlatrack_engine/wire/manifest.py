"""The job manifest (`manifest.json`, docs/conventions.md "Job folder") as one typed object.

The job queue, the pipeline, the report, batch and the add-on all read and write the same manifest; this is
the one place that knows its fields, their types and which are always present. A bad value fails when the
manifest is read or before it is written, with a message naming the file and the field, instead of later
deep inside the scene writer. Keys this version does not know (a newer engine's) are kept as they are.
Torch-free: the add-on reads manifests with this module.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

JOB_FORMAT = "dlatrack-job"
JOB_FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class JobFolderError(ValueError):
    """A job folder file is missing or malformed; the message names the file and the field."""


class ManifestError(JobFolderError):
    """A manifest field is missing or has the wrong type; the message names the file and the field."""


@dataclass
class Manifest:
    """One job's manifest. Fields from `created` on are written only once set (not None)."""

    job_id: str
    kind: str
    state: str = "queued"
    options: dict[str, Any] = field(default_factory=dict)  # the request as the pipeline ran it
    avatar: str | None = None
    video: Any = None  # a path, or (remote engine) an object naming the upload
    frames: list[int] = field(default_factory=list)  # source frame indices, in order
    fps: float | None = None
    size: list[int] | None = None  # [width, height] of the full-size video
    K: list[list[float]] | None = None  # 3x3 intrinsics at the full size
    stages_done: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    engine_version: str | None = None
    # -- written once set ------------------------------------------------------------------------------------
    created: float | None = None
    updated: float | None = None
    files: str | None = None  # the ledger's name; None in folders from before the ledger
    pipeline_fingerprint: str | None = None
    K_source: str | None = None
    work_size: list[int] | None = None
    schedule: dict[str, Any] | None = None
    landmark_detector: str | None = None
    landmark_failed_frames: list[int] | None = None
    landmark_dropped_frames: list[int] | None = None  # detected, but off the head's path in time
    landmark_embedding: Any = None
    lighting_source: dict[str, Any] | None = None
    preview_error: str | None = None
    summary: dict[str, Any] | None = None
    error: dict[str, str] | None = None  # {code, message} of a failed job
    interrupted: bool | None = None
    engine_paths: dict[str, Any] | None = None  # a mirror's: the engine's own paths
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    @classmethod
    def new(cls, job_id: str, kind: str, ledger: str, where: str = MANIFEST, **fields: Any) -> Manifest:
        now = time.time()
        manifest = cls(job_id=job_id, kind=kind, created=now, updated=now, files=ledger)
        return manifest.replace(where, **fields)

    @classmethod
    def from_dict(cls, data: Any, where: str = MANIFEST) -> Manifest:
        """Validate a parsed manifest.json (format, version, every known field's type)."""
        if not isinstance(data, Mapping) or data.get("format") != JOB_FORMAT:
            raise ManifestError(f"{where}: field 'format' must be {JOB_FORMAT!r}")
        version = data.get("format_version")
        if version != JOB_FORMAT_VERSION:
            raise ManifestError(f"{where}: field 'format_version' is {version!r}, expected {JOB_FORMAT_VERSION}")
        values = {key: _plain(value) for key, value in data.items() if key in _KNOWN}
        extra = {key: value for key, value in data.items() if key not in _KNOWN and key not in _FORMAT_KEYS}
        for key in ("job_id", "kind", "state"):
            if not isinstance(values.get(key), str):
                raise ManifestError(f"{where}: field '{key}' must be a string")
        for key, value in values.items():
            check = _CHECKS.get(key)
            if value is not None and check is not None and not check[0](value):
                raise ManifestError(f"{where}: field '{key}' is {_shown(value)}, expected {check[1]}")
        for key in ("options", "metrics", "frames", "stages_done"):  # always present to readers
            if values.get(key) is None:
                values.pop(key, None)
        return cls(**values, extra=dict(extra))

    def to_dict(self) -> dict[str, Any]:
        """The JSON object on disk (and in `job_frames` replies)."""
        out: dict[str, Any] = {"format": JOB_FORMAT, "format_version": JOB_FORMAT_VERSION}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            if item.name == "extra" or (value is None and item.name in _OPTIONAL):
                continue
            out[item.name] = value
        out.update(self.extra)
        return out

    def replace(self, where: str = MANIFEST, /, **fields: Any) -> Manifest:
        """A copy with `fields` set, validated as on reading (an unknown name is a programming error)."""
        unknown = set(fields) - _KNOWN
        if unknown:
            raise TypeError(f"unknown manifest field(s) {sorted(unknown)}")
        return Manifest.from_dict({**self.to_dict(), **fields}, where)


def _plain(value: Any) -> Any:
    """numpy arrays and scalars as JSON values (K = np.eye(3) is stored as nested lists)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _index_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value)


def _pair(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(isinstance(i, int) and i > 0 for i in value)


def _matrix3(value: Any) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 3
        and all(isinstance(row, list) and len(row) == 3 and all(_number(x) for x in row) for row in value)
    )


_FORMAT_KEYS = ("format", "format_version")
_KNOWN = {f.name for f in dataclasses.fields(Manifest)} - {"extra"}
_ALWAYS = {"job_id", "kind", "state", "options", "avatar", "video", "frames", "fps", "size", "K", "stages_done",
           "metrics", "engine_version"}  # fmt: skip
_OPTIONAL = _KNOWN - _ALWAYS  # omitted while unset: `files` absent marks a folder from before the ledger
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "options": (lambda v: isinstance(v, dict), "an object"),
    "avatar": (lambda v: isinstance(v, str), "a string"),
    "frames": (_index_list, "a list of frame indices"),
    "fps": (lambda v: _number(v) and v > 0, "a number > 0"),
    "size": (_pair, "[width, height]"),
    "K": (_matrix3, "a 3x3 matrix"),
    "stages_done": (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a list of stage names"),
    "metrics": (lambda v: isinstance(v, dict), "an object"),
    "engine_version": (lambda v: isinstance(v, str), "a string"),
    "created": (_number, "a time in seconds"),
    "updated": (_number, "a time in seconds"),
    "files": (lambda v: isinstance(v, str), "the ledger's file name"),
    "pipeline_fingerprint": (lambda v: isinstance(v, str), "a string"),
    "work_size": (_pair, "[width, height]"),
    "schedule": (lambda v: isinstance(v, dict), "an object"),
    "landmark_failed_frames": (_index_list, "a list of frame indices"),
    "landmark_dropped_frames": (_index_list, "a list of frame indices"),
    "lighting_source": (lambda v: isinstance(v, dict), "an object"),
    "summary": (lambda v: isinstance(v, dict), "an object"),
    "error": (lambda v: isinstance(v, dict), "an object {code, message}"),
    "interrupted": (lambda v: isinstance(v, bool), "true or false"),
    "engine_paths": (lambda v: isinstance(v, dict), "an object"),
}
