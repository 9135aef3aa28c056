"""What a client on another machine may name, and how its uploaded video becomes a job's input.

An engine serving remote clients (`dlatrack serve --remote`, or any non-loopback address) never takes a
path from them to write to or read from outside its state folder: a laptop's path means nothing on the
GPU box, and letting a client name paths would let it make the engine create folders or read files
anywhere the engine's user can. Such requests get `path_not_allowed`; inputs travel as uploads
(`uploads.py`) and the engine chooses every job folder itself.

The camera calibration travels with an uploaded video: the engine writes it as the `clip.json` beside the
job's copy of the video, where `fit.camera_setup` reads a clip's intrinsics, so the manifest's `K_source`
names it and a missing one still produces the pipeline's loud default-focal warning.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from pathlib import Path
from typing import Any

from dlatrack_engine.server.jobqueue import JobError


def refuse_client_path(remote: bool, name: str, op: str, instead: str) -> None:
    """In remote mode a client path is refused outright (`instead` says what to send)."""
    if remote:
        raise JobError(
            "path_not_allowed",
            f"{op}: '{name}' is a path, but this engine serves clients on other machines and takes no client "
            f"paths; {instead}",
        )


def confine(remote: bool, state_dir: Path, path: Path, name: str, op: str) -> Path:
    """In remote mode, a path must lead (links resolved) inside the engine's state folder: its own jobs."""
    if remote:
        root, real = os.path.realpath(state_dir), os.path.realpath(path)
        if os.path.commonpath([root, real]) != root:
            raise JobError(
                "path_not_allowed",
                f"{op}: '{name}' must be inside the engine's state folder (a job folder this engine made); "
                f"got {str(path)[:200]!r}",
            )
    return path


def check_calibration(value: Any, op: str) -> list[list[float]] | None:
    """The `calibration` argument: {"K": 3x3 intrinsics in pixels} or null."""
    if value is None:
        return None
    K = value.get("K") if isinstance(value, dict) else None
    rows_ok = isinstance(K, list) and len(K) == 3 and all(isinstance(r, list) and len(r) == 3 for r in K)
    numbers_ok = rows_ok and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for r in K for v in r
    )
    if not numbers_ok or K[0][0] <= 0 or K[1][1] <= 0 or K[2] != [0, 0, 1]:
        raise JobError(
            "bad_argument",
            f"{op}: 'calibration' must be {{\"K\": [[fx,0,cx],[0,fy,cy],[0,0,1]]}} with finite fx, fy > 0",
        )
    return [[float(v) for v in row] for row in K]


def stage_video(source: Path, folder: Path, K: list[list[float]] | None) -> Path:
    """The job's own copy of an uploaded video (a hard link into the store when possible), with its
    calibration beside it; the folder is removed when the job ends."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"video{source.suffix}"
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
    write_calibration(folder, K)
    return target


def write_calibration(folder: Path, K: list[list[float]] | None) -> None:
    """`clip.json` with the intrinsics, beside the job's video (nothing when none was sent)."""
    if K is not None:
        clip = {"K": K, "source": "sent by the client with the uploaded video"}
        (folder / "clip.json").write_text(json.dumps(clip), encoding="utf-8")
