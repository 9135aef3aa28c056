"""Non-rigid motion as one relative shape key per frame, keyed 0 → 1 → 0 with LINEAR interpolation.

Each key holds one tracked frame's vertices (object frame); its value is 1 on its own frame and 0 on the
neighbouring tracked frames, so exactly one key is active on a tracked frame and two blend linearly in
between. Keys are written with `foreach_set`, never vertex by vertex.
"""

from __future__ import annotations

from collections.abc import Sequence

import bpy
import numpy as np

from . import anim

BASIS = "Basis"
PREFIX = "frame_"


def ensure_basis(obj: bpy.types.Object) -> bpy.types.ShapeKey:
    """The basis key (the neutral shape), created from the mesh when missing."""
    if obj.data.shape_keys is None:
        return obj.shape_key_add(name=BASIS, from_mix=False)
    return obj.data.shape_keys.reference_key


def write_shape_keys(
    obj: bpy.types.Object,
    names: Sequence[str],
    frames: np.ndarray,
    vertices: np.ndarray,
    neighbours: Sequence[int] | None = None,
) -> list[bpy.types.ShapeKey]:
    """Create/overwrite keys `names[i]` holding `vertices[i]` ([N, V, 3]), keyed on scene `frames[i]`.

    A key's value is 1 at its frame and 0 at the previous and next tracked frames (`neighbours` overrides
    the frame list used to find those, e.g. the whole clip when writing a few frames at a time).
    """
    vertices = np.ascontiguousarray(vertices, dtype=np.float32)
    frames = np.asarray(frames, dtype=np.int64)
    num_vertices = len(obj.data.vertices)
    if vertices.ndim != 3 or vertices.shape[1:] != (num_vertices, 3) or len(names) != vertices.shape[0] != len(frames):
        raise ValueError(
            f"object '{obj.name}': shape keys need vertices [N, {num_vertices}, 3] for {len(names)} names and "
            f"{len(frames)} frames, got {vertices.shape}"
        )
    ensure_basis(obj)
    key_blocks = obj.data.shape_keys.key_blocks
    timeline = np.unique(np.concatenate([frames, np.asarray(neighbours if neighbours is not None else [], np.int64)]))
    written = []
    for name, frame, coords in zip(names, frames, vertices, strict=True):
        block = key_blocks.get(name) or obj.shape_key_add(name=name, from_mix=False)
        block.data.foreach_set("co", coords.ravel())
        block.value = 0.0
        position = int(np.searchsorted(timeline, frame))
        key_frames = [frame]
        key_values = [1.0]
        if position > 0:
            key_frames.insert(0, timeline[position - 1])
            key_values.insert(0, 0.0)
        if position + 1 < len(timeline):
            key_frames.append(timeline[position + 1])
            key_values.append(0.0)
        fcurve = anim.ensure_fcurve(obj.data.shape_keys, f'key_blocks["{name}"].value', group="DLATrack")
        anim.set_keyframes(fcurve, np.array(key_frames), np.array(key_values), "LINEAR")
        written.append(block)
    return written


def remove_frame_keys(obj: bpy.types.Object) -> int:
    """Delete all `frame_*` keys and their curves (switching a clip to the Mesh Cache path)."""
    shape_keys = obj.data.shape_keys
    if shape_keys is None:
        return 0
    anim.remove_fcurves(shape_keys, f'key_blocks["{PREFIX}')
    doomed = [kb for kb in shape_keys.key_blocks if kb.name.startswith(PREFIX)]
    for block in doomed:
        obj.shape_key_remove(block)
    return len(doomed)
