"""Where a clip's side files live (docs/conventions.md "Clip"): the engine reads its calibration and ground
truth there, and the add-on finds the calibration to send with an uploaded video by the same rule.
Torch-free: the add-on imports it through the `wire` link."""

from __future__ import annotations

from pathlib import Path

CLIP_JSON = "clip.json"
GT_FILE = "gt.npz"
DEFAULT_FOCAL_FACTOR = 0.75  # no calibration: f = 0.75 x the longer image side (about 67° across it)


def clip_root(video: Path) -> Path:
    """The folder of a clip (clip.json, gt.npz, masks/) from its video file, frames/ folder or itself."""
    if video.is_dir():
        return video.parent if video.name == "frames" else video
    return video.parent
