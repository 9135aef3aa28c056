"""Inside Blender: open a .blend made through a remote engine and list every file it points at, with
whether that file exists here (on the laptop)."""

from __future__ import annotations

from pathlib import Path

import bpy

from blender_addon.blender import material


def _file(path: str) -> dict:
    absolute = Path(bpy.path.abspath(path)).resolve()
    return {"path": str(absolute), "exists": absolute.is_file()}


def main(args: dict) -> dict:
    bpy.ops.wm.open_mainfile(filepath=args["blend"])
    scene = bpy.context.scene
    avatar = next(o for o in scene.objects if o.type == "MESH" and "dlatrack_avatar" in o)
    keys = avatar.data.shape_keys
    mat = material.avatar_material(avatar)
    textures = {}
    for kind, node in material.NODE_FOR_KIND.items():
        image = mat.node_tree.nodes[node].image
        if image is not None:
            textures[kind] = {**_file(image.filepath), "source": image.source}
    backgrounds = [b.image for b in scene.camera.data.background_images if b.image] if scene.camera else []
    return {
        "shape_keys": [kb.name for kb in keys.key_blocks] if keys else [],
        "textures": textures,
        "backgrounds": [{**_file(image.filepath), "source": image.source} for image in backgrounds],
        "all_images": [_file(image.filepath) for image in bpy.data.images if image.filepath],
        "range": [scene.frame_start, scene.frame_end],
    }
