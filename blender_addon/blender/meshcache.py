"""Non-rigid motion for long clips: a PC2 file played by a Mesh Cache modifier.

Thousands of shape keys make a .blend large and every frame change walks all their F-curves; a PC2 file
is one flat array the modifier streams from disk. `bench/bench_blender.py` measures where it pays off.
"""

from __future__ import annotations

from pathlib import Path

import bpy

MODIFIER_NAME = "DLATrack Mesh Cache"


def attach_mesh_cache(obj: bpy.types.Object, pc2_path: str | Path, first_scene_frame: int) -> bpy.types.Modifier:
    """Add (or update) the Mesh Cache modifier so PC2 sample k shows on scene frame `first_scene_frame + k`.

    The PC2 holds object-frame positions, so the axis conversion stays identity (+Y forward, +Z up) and
    the modifier overwrites the mesh (shape keys, if any, are replaced, not added to).
    """
    modifier = obj.modifiers.get(MODIFIER_NAME) or obj.modifiers.new(MODIFIER_NAME, "MESH_CACHE")
    modifier.cache_format = "PC2"
    modifier.filepath = str(pc2_path)
    modifier.deform_mode = "OVERWRITE"
    modifier.interpolation = "LINEAR"
    modifier.play_mode = "SCENE"
    modifier.time_mode = "FRAME"
    # The modifier reads sample (scene_frame * frame_scale - frame_start).
    modifier.frame_start = float(first_scene_frame)
    modifier.frame_scale = 1.0
    modifier.forward_axis = "POS_Y"
    modifier.up_axis = "POS_Z"
    # No axis flipped: a set of flags before Blender 4.x, three booleans since.
    no_flip = set() if modifier.bl_rna.properties["flip_axis"].type == "ENUM" else (False, False, False)
    modifier.flip_axis = no_flip
    return modifier
