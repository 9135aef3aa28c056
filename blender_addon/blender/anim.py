"""F-curve helpers that work with Blender 5's layered (slotted) actions and with legacy actions.

Keyframes are written in bulk with `foreach_set`: inserting them one by one through `keyframe_insert`
costs a Python round trip and an RNA update per key, which dominates writing a long clip.
"""

from __future__ import annotations

import bpy
import numpy as np

_INTERPOLATION = {"CONSTANT": 0, "LINEAR": 1, "BEZIER": 2}


def ensure_action(id_data: bpy.types.ID, name: str | None = None) -> bpy.types.Action:
    """The ID's action, created and assigned (with a slot, on Blender 4.4+) when missing."""
    anim = id_data.animation_data or id_data.animation_data_create()
    if anim.action is None:
        anim.action = bpy.data.actions.new(name or f"{id_data.name}Action")
    return anim.action


def ensure_fcurve(id_data: bpy.types.ID, data_path: str, index: int = 0, group: str = "") -> bpy.types.FCurve:
    """Find or create the F-curve animating `id_data.<data_path>[index]`."""
    action = ensure_action(id_data)
    if hasattr(action, "fcurve_ensure_for_datablock"):  # Blender 4.4+: layered actions
        return action.fcurve_ensure_for_datablock(id_data, data_path, index=index, group_name=group)
    fcurve = action.fcurves.find(data_path, index=index)
    if fcurve is None:
        fcurve = action.fcurves.new(data_path, index=index, action_group=group)
    return fcurve


def iter_fcurves(id_data: bpy.types.ID) -> list[bpy.types.FCurve]:
    """All F-curves of the ID's assigned action (both action APIs)."""
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        return []
    action = anim.action
    if hasattr(action, "fcurves"):
        return list(action.fcurves)
    from bpy_extras import anim_utils

    channelbag = anim_utils.action_get_channelbag_for_slot(action, anim.action_slot)
    return list(channelbag.fcurves) if channelbag is not None else []


def remove_fcurves(id_data: bpy.types.ID, prefix: str) -> int:
    """Delete the F-curves whose data path starts with `prefix` (re-writing a clip replaces its keys)."""
    anim = id_data.animation_data
    if anim is None or anim.action is None:
        return 0
    action = anim.action
    if hasattr(action, "fcurves"):
        container = action.fcurves
    else:
        from bpy_extras import anim_utils

        container = anim_utils.action_get_channelbag_for_slot(action, anim.action_slot)
        if container is None:
            return 0
        container = container.fcurves
    doomed = [fc for fc in container if fc.data_path.startswith(prefix)]
    for fcurve in doomed:
        container.remove(fcurve)
    return len(doomed)


def set_keyframes(
    fcurve: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray, interpolation: str = "LINEAR"
) -> None:
    """Replace the curve's keys with (frames, values), all at once."""
    frames = np.asarray(frames, dtype=np.float32).ravel()
    values = np.asarray(values, dtype=np.float32).ravel()
    if frames.shape != values.shape:
        raise ValueError(
            f"F-curve {fcurve.data_path}[{fcurve.array_index}]: {frames.size} frames but {values.size} values"
        )
    points = fcurve.keyframe_points
    points.clear()
    points.add(frames.size)
    co = np.empty(2 * frames.size, dtype=np.float32)
    co[0::2], co[1::2] = frames, values
    points.foreach_set("co", co)
    # Handles sit on the key for LINEAR/CONSTANT curves; setting them avoids a recalc pass per key.
    points.foreach_set("handle_left", co)
    points.foreach_set("handle_right", co)
    points.foreach_set("interpolation", np.full(frames.size, _INTERPOLATION[interpolation], dtype=np.int32))
    fcurve.update()


def append_keyframes(
    fcurve: bpy.types.FCurve, frames: np.ndarray, values: np.ndarray, interpolation: str = "LINEAR"
) -> None:
    """Merge (frames, values) into the curve's keys (a key at the same frame is overwritten)."""
    points = fcurve.keyframe_points
    old = np.empty(2 * len(points), dtype=np.float32)
    points.foreach_get("co", old)
    merged = dict(zip(old[0::2].tolist(), old[1::2].tolist(), strict=True))
    merged.update(
        zip(
            np.asarray(frames, np.float32).ravel().tolist(),
            np.asarray(values, np.float32).ravel().tolist(),
            strict=True,
        )
    )
    keys = sorted(merged)
    set_keyframes(fcurve, np.array(keys), np.array([merged[k] for k in keys]), interpolation)
