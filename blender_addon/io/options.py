"""Track request options from the sidebar settings (bpy-free, so tests can check them in plain Python).

The keys are the engine's `fit.pipeline.TrackOptions` fields (the engine rejects unknown ones). "Fast" and
"Paper" are the engine's two schedules: "paper" is the published one (Sec. 3.3: 1000 iterations per frame in
steps 1 and 3, Algorithm 1's 4 rounds of 250 + 500), "fast" a shortened one for a laptop. "Preview" runs
step 1 alone (the landmark fit, Eq. 6), which takes seconds where the full method takes minutes on a CPU.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .wire.digest import request_digest

PRESETS: dict[str, dict[str, Any]] = {
    "PREVIEW": {
        "label": "Preview",
        "description": "Landmark fit only (step 1, no lighting adaptation): seconds, to check the framing, the frame "
        "range and the head pose before a full run; the relit texture is the fully-lit one",
        "options": {"quality": "fast", "steps": "landmarks", "lighting": "none"},
    },
    "FAST": {
        "label": "Fast",
        "description": "The engine's shortened schedule (minutes on a CPU)",
        "options": {"quality": "fast"},
    },
    "PAPER": {
        "label": "Paper",
        "description": "The paper's schedule (slow without a GPU)",
        "options": {"quality": "paper"},
    },
}


def track_options(frame_start: int, frame_count: int, key_frames: int, preset: str) -> dict[str, Any]:
    """The `options` dict of a `track` request (frame_count 0: to the end of the video). The values are the
    engine's to check, once, at submission (its `bad_argument` names the field); only the preset, which is
    this module's own name, is checked here."""
    if preset not in PRESETS:
        raise ValueError(f"quality preset {preset!r}: expected one of {sorted(PRESETS)}")
    options: dict[str, Any] = {"start": int(frame_start), "key_frames": int(key_frames), **PRESETS[preset]["options"]}
    if frame_count:
        options["stop"] = int(frame_start + frame_count)
    return options


def job_folder_name(video: str, avatar: str, options: Mapping[str, Any]) -> str:
    """The job folder (under the preferences' output folder) for tracking `video` with `avatar` and `options`.

    One folder per request, named the same every time: a second video or other options never collide with an
    earlier job (the engine refuses a folder holding another request's results), and re-running the same
    request resumes it without recomputing finished frames.
    """
    request = {"video": str(Path(video).resolve()), "avatar": str(Path(avatar).resolve()), **options}
    digest = request_digest(request, 10)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(video).stem).strip("_") or "video"
    return f"{stem[:40]}-{digest}"
