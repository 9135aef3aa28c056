"""Track request options from the sidebar settings (bpy-free, so tests can check them in plain Python).

The keys are the engine's `fit.pipeline.TrackOptions` fields (the engine rejects unknown ones). The two
quality presets are the engine's schedules: "paper" is the published one (Sec. 3.3: 1000 iterations per
frame in steps 1 and 3, Algorithm 1's 4 rounds of 250 + 500), "fast" a shortened one for a laptop.
"""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, str]] = {
    "FAST": {"label": "Fast", "description": "The engine's shortened schedule (minutes on a CPU)", "quality": "fast"},
    "PAPER": {"label": "Paper", "description": "The paper's schedule (slow without a GPU)", "quality": "paper"},
}


def track_options(frame_start: int, frame_count: int, key_frames: int, preset: str) -> dict[str, Any]:
    """The `options` dict of a `track` request (frame_count 0: to the end of the video)."""
    if preset not in PRESETS:
        raise ValueError(f"quality preset {preset!r}: expected one of {sorted(PRESETS)}")
    if frame_start < 0 or frame_count < 0 or key_frames < 1:
        raise ValueError(f"frame range {frame_start}+{frame_count} and K={key_frames} must be non-negative (K >= 1)")
    options: dict[str, Any] = {
        "start": int(frame_start),
        "key_frames": int(key_frames),
        "quality": PRESETS[preset]["quality"],
    }
    if frame_count:
        options["stop"] = int(frame_start + frame_count)
    return options
