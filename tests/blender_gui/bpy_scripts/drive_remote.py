"""Inside an interactive Blender on the "laptop": the preferences' Remote engine (the connection file copied
from the "GPU box"), Import Avatar, Connect, and the modal Track Video, which uploads the video and the
avatar, mirrors the results (and the job's preview.mp4, for Show Comparison) into the output folder and
builds the scene from them; then Relight for Camera through the same connection (issue 24)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drive_track import ADDON, addon_ui, job_outcome, open_sidebar, start_job, wait

from blender_addon.docs.window_driver import in_view3d


def steps(args: dict) -> Iterator[float]:
    window, scene, _area, _drawn = yield from open_sidebar(args)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.engine_mode, prefs.connection_file, prefs.output_dir = "REMOTE", args["connection_file"], args["jobs"]
    engine_ui, track_ui = addon_ui()
    settings = scene.dlatrack
    settings.avatar_path, settings.video_path = args["package"], args["video"]
    settings.key_frames, settings.write_mode = 2, "SHAPE_KEYS"
    out: dict = {}
    with in_view3d(window):
        out["import"] = list(bpy.ops.dlatrack.import_avatar())
        out["connect"] = list(bpy.ops.dlatrack.engine_connect())
    yield 0.2
    watch = start_job(window, scene, args["request"])
    run = track_ui.active_run(scene)
    yield from wait(watch, lambda: not settings.running, 120, "remote track: operator ended")
    out["track"] = job_outcome(scene, run, watch)
    camera = scene.camera
    out["backgrounds"] = [bpy.path.abspath(b.image.filepath) for b in camera.data.background_images if b.image]
    material = settings.avatar_object.active_material
    out["images"] = [bpy.path.abspath(node.image.filepath) for node in material.node_tree.nodes
                     if node.type == "TEX_IMAGE" and node.image is not None]  # fmt: skip
    out["assumed_focal"] = run.calibration.assumed
    # The engine's preview.mp4 comes back with the mirror's last sync: the Result box offers Show Comparison.
    out["job_folder"] = bpy.path.abspath(settings.job_folder)
    try:
        with in_view3d(window):
            out["comparison"] = list(bpy.ops.dlatrack.show_comparison())
    except RuntimeError as exc:  # the operator's ERROR report
        out["comparison"] = [str(exc)]
    # Relight for Camera through the same remote connection: a camera to the side, textures re-decoded there.
    side = bpy.data.objects.new("Side", bpy.data.cameras.new("Side"))
    scene.collection.objects.link(side)
    side.location = (0.6, camera.location.y, camera.location.z)
    scene.camera = side
    with in_view3d(window):
        out["relight"] = list(bpy.ops.dlatrack.relight_camera())
    engine_ui.disconnect()  # not ours to stop: the engine belongs to the GPU box
    return out
