"""Rigid head motion as keyframes on a parent empty (location + quaternion, LINEAR).

Keeping the rigid pose on a parent empty leaves the avatar object's own transform free for the user and
keeps the non-rigid part (shape keys / mesh cache) in the head frame, as the DAM produces it.
"""

from __future__ import annotations

import bpy
import numpy as np

from . import anim


def ensure_head_empty(name: str, collection: bpy.types.Collection) -> bpy.types.Object:
    """The parent empty that carries the head pose (created when missing)."""
    empty = bpy.data.objects.get(name)
    if empty is None:
        empty = bpy.data.objects.new(name, None)
        empty.empty_display_type = "ARROWS"
        empty.empty_display_size = 0.1
        collection.objects.link(empty)
    empty.rotation_mode = "QUATERNION"
    return empty


def parent_to(child: bpy.types.Object, parent: bpy.types.Object) -> None:
    """Parent with an identity inverse, so the child's object frame *is* the parent's frame."""
    child.parent = parent
    child.matrix_parent_inverse.identity()
    child.location = (0.0, 0.0, 0.0)
    child.rotation_mode = "QUATERNION"
    child.rotation_quaternion = (1.0, 0.0, 0.0, 0.0)
    child.scale = (1.0, 1.0, 1.0)


def write_pose_keys(
    empty: bpy.types.Object, frames: np.ndarray, locations: np.ndarray, quaternions: np.ndarray, merge: bool = False
) -> None:
    """Key `location` [N, 3] and `rotation_quaternion` [N, 4] (w, x, y, z) on scene `frames` [N]."""
    frames = np.asarray(frames, dtype=np.float64)
    if locations.shape != (len(frames), 3) or quaternions.shape != (len(frames), 4):
        raise ValueError(
            f"empty '{empty.name}': pose keys need locations [{len(frames)}, 3] and quaternions [{len(frames)}, 4], "
            f"got {locations.shape} and {quaternions.shape}"
        )
    write = anim.append_keyframes if merge else anim.set_keyframes
    for axis in range(3):
        write(anim.ensure_fcurve(empty, "location", axis, "Head pose"), frames, locations[:, axis], "LINEAR")
    for axis in range(4):
        write(
            anim.ensure_fcurve(empty, "rotation_quaternion", axis, "Head pose"), frames, quaternions[:, axis], "LINEAR"
        )
    if len(frames):
        empty.location = locations[-1]
        empty.rotation_quaternion = quaternions[-1]
