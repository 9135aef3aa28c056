"""Inside Blender: open a .blend written by batch.py and report what it holds."""

from __future__ import annotations

import bpy

from blender_addon.blender import material


def main(args: dict) -> dict:
    bpy.ops.wm.open_mainfile(filepath=args["blend"])
    scene = bpy.context.scene
    avatars = [o for o in scene.objects if o.type == "MESH" and "dlatrack_avatar" in o]
    avatar = avatars[0]
    keys = avatar.data.shape_keys
    mat = material.avatar_material(avatar)
    images = {kind: mat.node_tree.nodes[node].image for kind, node in material.NODE_FOR_KIND.items()}
    error = None
    if "job" in args:  # every frame's evaluated mesh against the job folder's vertices (head -> object frame)
        from blender_addon.blender.mesh import object_vertices
        from blender_addon.io.result import TrackResult

        track = TrackResult(args["job"]).read()
        error = 0.0
        for frame, expected in zip(track.scene_frames, track.vertices, strict=True):
            scene.frame_set(int(frame))
            actual = object_vertices(avatar, bpy.context.evaluated_depsgraph_get())
            error = max(error, float(abs(actual - expected).max()))
    backgrounds = scene.camera.data.background_images if scene.camera else []
    return {
        "objects": sorted(o.type for o in scene.objects),
        "engine": scene.render.engine,
        "background": [(b.image.source, b.image_user.frame_offset) for b in backgrounds if b.image],
        "max_vertex_error": error,
        "avatars": len(avatars),
        "shape_keys": [kb.name for kb in keys.key_blocks] if keys else [],
        "modifiers": [m.type for m in avatar.modifiers],
        "parent": avatar.parent.name if avatar.parent else None,
        "camera": scene.camera.name if scene.camera else None,
        "range": [scene.frame_start, scene.frame_end],
        "images": {k: (img.source if img else None) for k, img in images.items()},
    }
