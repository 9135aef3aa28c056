"""Inside Blender: register/unregister twice, Import Avatar, write a 100-frame job both ways and compare."""

from __future__ import annotations

import shutil
from pathlib import Path

import bpy
import numpy as np
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

import blender_addon
from blender_addon.blender import anim, material
from blender_addon.blender.avatar import import_avatar
from blender_addon.blender.mesh import object_vertices
from blender_addon.blender.scene import SceneWriter, WriteOptions, write_result
from blender_addon.io.result import TrackResult


def check_registration() -> dict:
    seen = []
    for _ in range(2):
        blender_addon.register()
        seen.append(
            hasattr(bpy.types, "VIEW3D_PT_dlatrack")
            and hasattr(bpy.types.Scene, "dlatrack")
            and bpy.ops.dlatrack.track_video.idname() == "DLATRACK_OT_track_video"
        )
        blender_addon.unregister()
        seen.append(not hasattr(bpy.types, "VIEW3D_PT_dlatrack") and not hasattr(bpy.types.Scene, "dlatrack"))
    # As users get it: enabled through addon_utils, with preferences (addon_utils needs bpy loaded first).
    import addon_utils

    addon_utils.enable("blender_addon", default_set=True)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    return {"register_cycles_ok": seen, "prefs_mesh_cache_above": prefs.mesh_cache_above}


def check_import(package: str, expected: dict) -> bpy.types.Object:
    settings = bpy.context.scene.dlatrack
    settings.avatar_path = package
    assert bpy.ops.dlatrack.import_avatar() == {"FINISHED"}
    obj = settings.avatar_object
    uvs = np.empty(2 * len(obj.data.loops), np.float32)
    obj.data.uv_layers["UVMap"].data.foreach_get("uv", uvs)
    return obj, {
        "vertices": len(obj.data.vertices),
        "neutral_error": float(np.abs(object_vertices(obj) - expected["neutral_object"]).max()),
        "uv_error": float(np.abs(uvs.reshape(-1, 2) - expected["corner_uvs"]).max()),
        "material": obj.active_material.name if obj.active_material else None,
    }


def compare_frames(scene: bpy.types.Scene, obj: bpy.types.Object, expected: dict) -> dict:
    local_err = world_err = 0.0
    for index in range(len(expected["object_vertices"])):
        scene.frame_set(index + 1)
        depsgraph = bpy.context.evaluated_depsgraph_get()
        local = object_vertices(obj, depsgraph).astype(np.float64)
        matrix = np.array(obj.evaluated_get(depsgraph).matrix_world)
        world = local @ matrix[:3, :3].T + matrix[:3, 3]
        local_err = max(local_err, float(np.abs(local - expected["object_vertices"][index]).max()))
        world_err = max(world_err, float(np.abs(world - expected["world_vertices"][index]).max()))
    return {"local_error": local_err, "world_error": world_err}


def check_camera(scene: bpy.types.Scene, expected: dict, frame_index: int) -> float:
    """Blender's projection through the written camera equals the OpenCV projection with K."""
    cam = scene.camera
    width, height = scene.render.resolution_x, scene.render.resolution_y
    worst = 0.0
    for point, pixel in zip(
        expected["world_vertices"][frame_index][::7], expected["pixels"][frame_index][::7], strict=True
    ):
        ndc = world_to_camera_view(scene, cam, Vector(point))
        u, v = ndc.x * width, (1.0 - ndc.y) * height
        worst = max(worst, abs(u - pixel[0]), abs(v - pixel[1]))
    return float(worst)


def check_sequences(scene: bpy.types.Scene, obj: bpy.types.Object) -> dict:
    """The image users advance with the frame (read from the evaluated material, where Blender updates them)."""
    mat = material.avatar_material(obj)
    shown = {}
    for kind, node_name in material.NODE_FOR_KIND.items():
        node = mat.node_tree.nodes[node_name]
        frames = []
        for frame in (1, 2, 50):
            scene.frame_set(frame)
            evaluated = mat.evaluated_get(bpy.context.evaluated_depsgraph_get())
            frames.append(evaluated.node_tree.nodes[node_name].image_user.frame_current)
        shown[kind] = {"source": node.image.source, "auto_refresh": node.image_user.use_auto_refresh, "shown": frames}
    return shown


def check_incremental(scene: bpy.types.Scene, job: str, work: str, package: str, mode: str, expected: dict) -> dict:
    """Frames arriving in batches and out of order (as from a running engine) give the same animation."""
    source = Path(job)
    growing = Path(work) / f"growing_{mode}"
    (growing / "frames").mkdir(parents=True)
    shutil.copy(source / "manifest.json", growing / "manifest.json")
    if (source / "files.jsonl").exists():  # the engine's ledger: a frame counts once its file is there too
        shutil.copy(source / "files.jsonl", growing / "files.jsonl")
    shutil.copytree(source / "textures", growing / "textures")
    obj = import_avatar(bpy.context, package)
    writer = SceneWriter(scene, obj, TrackResult(growing), WriteOptions(mode=mode, name=f"Grow {mode}", cache_dir=work))
    counts = []
    for batch in (range(0, 50), range(70, 100), range(50, 70)):
        for index in batch:
            name = f"{index:06d}.npz"
            shutil.copy(source / "frames" / name, growing / "frames" / name)
        counts.append(writer.write_new())
    return {"counts": counts, **compare_frames(scene, obj, expected)}


def main(args: dict) -> dict:
    loaded = np.load(args["expected"])
    expected = {key: loaded[key] for key in loaded.files}
    out = check_registration()
    scene = bpy.context.scene
    obj, out["import"] = check_import(args["package"], expected)

    writer = write_result(scene, obj, args["job"], WriteOptions(mode="SHAPE_KEYS"))
    keys = obj.data.shape_keys
    curve = next(fc for fc in anim.iter_fcurves(keys) if fc.data_path == 'key_blocks["frame_0050"].value')
    out["shape_keys"] = {
        "mode": writer.mode,
        "count": len(keys.key_blocks),
        "frame_0050_keys": [list(k.co) for k in curve.keyframe_points],
        "interpolation": sorted({k.interpolation for k in curve.keyframe_points}),
        "fps": [scene.render.fps, scene.render.fps_base],
        "range": [scene.frame_start, scene.frame_end],
        **compare_frames(scene, obj, expected),
    }
    out["camera_pixel_error"] = max(check_camera(scene, expected, i) for i in (0, 40, 99))
    out["sequences"] = check_sequences(scene, obj)

    # Mesh Cache path: a second avatar with its own head empty and camera.
    cache_obj = import_avatar(bpy.context, args["package"])
    options = WriteOptions(mode="MESH_CACHE", name="DLATrack PC2", cache_dir=args["work"])
    cache_writer = write_result(scene, cache_obj, args["job"], options)
    out["mesh_cache"] = {
        "mode": cache_writer.mode,
        "pc2": str(cache_writer.pc2_path),
        "shape_keys": cache_obj.data.shape_keys is not None,
        **compare_frames(scene, cache_obj, expected),
    }
    out["incremental"] = {
        mode: check_incremental(scene, args["job"], args["work"], args["package"], mode, expected)
        for mode in ("SHAPE_KEYS", "MESH_CACHE")
    }
    return out
