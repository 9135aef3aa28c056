"""Runs inside Blender (bpy): project points through Blender cameras and place a posed head object.

Called by test_blender_camera.py through tests/blender_runner.py; plain bpy, no engine imports.
"""

from __future__ import annotations

import bpy
import mathutils
from bpy_extras.object_utils import world_to_camera_view


def main(args: dict) -> dict:
    scene = bpy.context.scene
    width, height = args["width"], args["height"]
    scene.render.resolution_x, scene.render.resolution_y = width, height
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = scene.render.pixel_aspect_y = 1.0
    projected = []
    for case in args["cases"]:
        data = bpy.data.cameras.new("dlatrack_cam")
        data.lens, data.sensor_width = case["lens"], case["sensor_width"]
        data.sensor_fit = case["sensor_fit"]
        data.shift_x, data.shift_y = case["shift_x"], case["shift_y"]
        cam = bpy.data.objects.new("dlatrack_cam", data)
        scene.collection.objects.link(cam)
        cam.matrix_world = mathutils.Matrix(case["matrix_world"])
        scene.camera = cam
        bpy.context.view_layer.update()
        rows = []
        for p in case["points"]:
            co = world_to_camera_view(scene, cam, mathutils.Vector(p))
            rows.append([co.x * width, (1.0 - co.y) * height, co.z])  # Blender's view origin: bottom-left
        projected.append(rows)
    mesh = bpy.data.meshes.new("dlatrack_head")
    mesh.from_pydata(args["head_points_blender"], [], [])
    head = bpy.data.objects.new("dlatrack_head", mesh)
    scene.collection.objects.link(head)
    head.matrix_world = mathutils.Matrix(args["head_matrix"])
    bpy.context.view_layer.update()
    head_world = [list(head.matrix_world @ v.co) for v in mesh.vertices]
    return {"projected": projected, "head_world": head_world}
