"""Inside Blender, shared by the bpy scripts: the add-on enabled and connected to a running engine, the avatar
imported and a job folder written into the scene as Track Video writes it."""

from __future__ import annotations

import bpy

from blender_addon.blender.scene import WriteOptions, write_result


def connected_scene_with_job(args: dict):
    """-> (scene, add-on preferences, the scene writer) for args' connection_file, package and job."""
    import addon_utils  # importable only once bpy is loaded

    addon_utils.enable("blender_addon", default_set=True)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.engine_mode, prefs.connection_file = "CONNECT", args["connection_file"]
    scene = bpy.context.scene
    settings = scene.dlatrack
    settings.avatar_path = args["package"]
    assert bpy.ops.dlatrack.import_avatar() == {"FINISHED"}
    writer = write_result(scene, settings.avatar_object, args["job"], WriteOptions(mode="SHAPE_KEYS"))
    settings.job_folder = args["job"]
    return scene, prefs, writer
