"""Inside Blender: "Relight for Camera" through the real engine for a camera beside the video camera."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
import numpy as np

import blender_addon
from blender_addon.blender import material

sys.path.insert(0, str(Path(__file__).parent))
from engine_scene import connected_scene_with_job


def main(args: dict) -> dict:
    scene, prefs, writer = connected_scene_with_job(args)
    # A second camera, 40 degrees round the subject from the video camera, as the active camera.
    camera = bpy.data.objects.new("Side Cam", bpy.data.cameras.new("Side Cam"))
    scene.collection.objects.link(camera)
    camera.location = (0.6 * np.sin(0.7), 0.6 - 0.6 * np.cos(0.7), 0.05)
    scene.camera = camera
    status = bpy.ops.dlatrack.relight_camera()
    nodes = writer.material.node_tree.nodes
    images = {kind: bpy.path.abspath(nodes[node].image.filepath) for kind, node in material.NODE_FOR_KIND.items()}
    from blender_addon.ui import engine

    engine.disconnect()
    # "Start a local engine": the sidebar's Start button with the engine venv's Python, then Stop.
    prefs.engine_mode, prefs.engine_python = "LOCAL", args["engine_python"]
    started = bpy.ops.dlatrack.engine_connect()
    info, process = dict(engine.info()), engine._state["process"]
    bpy.ops.dlatrack.engine_stop()
    local = {"status": sorted(started), "device": info.get("device"), "stopped": process.poll() is not None}
    blender_addon.unregister()
    return {"status": sorted(status), "images": images, "camera_centre": list(camera.location), "local": local}
