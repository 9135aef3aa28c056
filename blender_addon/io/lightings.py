"""A scene's stored lightings, without bpy: what a finished `adapt` job left, and how a track request reuses
one (issue 27). The lighting itself stays in the engine's job folder (`<job>/lighting/`, the format of
`wire/lighting_folder.py`); the scene keeps its path, and the engine checks it against the avatar when a
track request names it in `lighting_from`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .wire.lighting_folder import LIGHTING_DIR, PREVIEW_FILE, LightingFolderError, read_info


@dataclass
class AdaptedLighting:
    """What the sidebar lists: the engine-side lighting folder, the video it came from, its preview (local)."""

    folder: str
    video: str
    model: str
    key_frames: list[int]
    preview: str | None  # a PNG on this machine, None when the engine's disk is not visible here


def adapted_lighting(job_folder: str, video: str) -> AdaptedLighting:
    """The lighting of a finished `adapt` job (LightingFolderError naming the file when it is not complete)."""
    root = Path(job_folder) / LIGHTING_DIR
    if not root.is_dir():  # an engine on another machine: trust its path, no preview here
        return AdaptedLighting(str(root), video, "G", [], None)
    info = read_info(root)
    if info.legacy:
        raise LightingFolderError(f"{root}: written by an engine too old to reuse lightings")
    preview = root / PREVIEW_FILE
    return AdaptedLighting(str(root), video, info.model, list(info.key_source_frames),
                           str(preview) if PREVIEW_FILE in info.files else None)  # fmt: skip


def with_lighting(options: Mapping[str, Any], lighting_folder: str | None) -> dict[str, Any]:
    """Track options that reuse `lighting_folder` (skipping step 2), or adapt anew when it is None."""
    out = dict(options)
    if lighting_folder:
        if out.get("steps") == "landmarks":
            raise ValueError("the Preview quality runs step 1 alone: it uses no lighting; choose Fast or Paper")
        out["lighting_from"] = str(lighting_folder)
    return out
