"""Inside Blender: write a job folder, render the avatar's silhouette with Workbench on chosen frames."""

from __future__ import annotations

import bpy

from blender_addon.blender.avatar import import_avatar
from blender_addon.blender.scene import WriteOptions, write_result


def main(args: dict) -> dict:
    scene = bpy.context.scene
    for obj in list(scene.objects):
        bpy.data.objects.remove(obj)
    avatar = import_avatar(bpy.context, args["package"])
    writer = write_result(scene, avatar, args["job"], WriteOptions(mode=args.get("mode", "AUTO")))
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.film_transparent = True
    scene.render.image_settings.color_mode = "RGBA"
    paths = []
    for frame in args["frames"]:
        scene.frame_set(frame)
        scene.render.filepath = f"{args['out']}/{frame:04d}.png"
        bpy.ops.render.render(write_still=True)
        paths.append(scene.render.filepath)
    backgrounds = [b.image.source for b in writer.camera.data.background_images if b.image]
    return {"renders": paths, "mode": writer.mode, "background": backgrounds}
