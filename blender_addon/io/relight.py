"""Relight for a viewpoint (bpy-free): ask the engine to re-decode a job's textures for per-frame view
vectors and store them in the local job folder as `textures/view_<name>/{full,relit}/<i:06d>.png`.

The engine decodes with the job's own adapted lighting (its `lighting/` folder), found through the job id
(the engine that ran it) or the folder path (an engine that can see it). The PNGs come back over the
socket and are written here, so this works whether or not Blender sees the engine's disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .wire.jobfolder import JobFolder


def decode_view_textures(
    client: Any,
    avatar_id: str,
    folder: JobFolder,
    frames: Sequence[int],
    views: np.ndarray,
    name: str,
    job_id: str | None = None,
    chunk: int = 64,
) -> dict[str, int]:
    """Decode `frames` for `views` ([N, 3] or [3], head frame) and write them under view `name`.

    Returns how many textures of each kind were written. Chunks bound the size of one reply.
    """
    views = np.broadcast_to(np.asarray(views, dtype=np.float64).reshape(-1, 3), (len(frames), 3))
    counts = {"full": 0, "relit": 0}
    where = {"job_id": job_id} if job_id else {"folder": str(folder.root)}
    for start in range(0, len(frames), chunk):
        part = [int(f) for f in frames[start : start + chunk]]
        reply = client.decode_view(avatar_id, frames=part, view=views[start : start + chunk], returns="png", **where)
        for kind, key in (("full", "full"), ("relit", "relit_textures")):
            for index, png in reply[key].items():
                folder.write_texture(kind, int(index), png, view=name)
                counts[kind] += 1
    return counts
