"""Inside Blender: write the job, render two frames and a fully-lit frame (Cycles on the CPU, or Eevee), tiny."""

from __future__ import annotations

from pathlib import Path

import bpy

from blender_addon.blender import material
from blender_addon.blender.avatar import import_avatar
from blender_addon.blender.scene import WriteOptions, write_result


def render(scene: bpy.types.Scene, frame: int, path: Path) -> str:
    scene.frame_set(frame)
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    return str(path)


def main(args: dict) -> dict:
    scene = bpy.context.scene
    avatar = import_avatar(bpy.context, args["package"])
    writer = write_result(scene, avatar, args["job"], WriteOptions(mode="SHAPE_KEYS"))
    engine = args.get("engine", "CYCLES")
    if engine == "CYCLES":
        scene.render.engine = "CYCLES"
        scene.cycles.device = "CPU"
        scene.cycles.samples = 4
        scene.cycles.use_denoising = False
    else:  # Eevee: "BLENDER_EEVEE" before 4.2 and from 5.0, "BLENDER_EEVEE_NEXT" in 4.2-4.5
        engines = scene.render.bl_rna.properties["engine"].enum_items.keys()
        scene.render.engine = "BLENDER_EEVEE_NEXT" if "BLENDER_EEVEE_NEXT" in engines else "BLENDER_EEVEE"
        scene.eevee.taa_render_samples = 1  # one unjittered sample: texels without filtering, like Cycles'
    scene.render.film_transparent = True
    scene.render.dither_intensity = 0.0
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    work = Path(args["work"])
    out = {
        "engine": scene.render.engine,
        "size": [scene.render.resolution_x, scene.render.resolution_y],
        "relit_1": render(scene, 1, work / "relit_1.png"),
        "relit_2": render(scene, 2, work / "relit_2.png"),
    }
    material.set_relit(writer.material, False)
    out["full_1"] = render(scene, 1, work / "full_1.png")
    return out
