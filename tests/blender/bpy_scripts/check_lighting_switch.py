"""Inside Blender: a job whose lighting switches mid-clip, imported with the add-on (its avatar import and the
scene writer Track Video uses), rendered with Cycles from the video camera; then Relight for Camera through
the engine for a camera beside it, rendered again from that camera."""

from __future__ import annotations

import sys
from pathlib import Path

import bpy
from mathutils import Matrix, Vector

import blender_addon
from blender_addon.blender import material

sys.path.insert(0, str(Path(__file__).parent))
from engine_scene import connected_scene_with_job


def render_frames(scene: bpy.types.Scene, frames: list[int], folder: Path) -> dict[str, str]:
    """Render each scene frame of `frames` to `folder/<frame>.png`; -> {frame: path}."""
    paths = {}
    for frame in frames:
        scene.frame_set(frame)
        scene.render.filepath = str(folder / f"{frame:04d}.png")
        bpy.ops.render.render(write_still=True)
        paths[str(frame)] = scene.render.filepath
    return paths


def setup_cycles(scene: bpy.types.Scene) -> None:
    """Tiny and deterministic: the material only emits its texture, so a few samples give the texels."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 2
    scene.cycles.use_denoising = False
    scene.render.film_transparent = True
    scene.render.dither_intensity = 0.0
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"


def side_camera(scene: bpy.types.Scene, video_camera: bpy.types.Object, head: Vector) -> bpy.types.Object:
    """A camera with the video camera's lens, 40 degrees round the head (about world Z) from the video
    camera, looking at the head."""
    camera = bpy.data.objects.new("Side Cam", video_camera.data)
    scene.collection.objects.link(camera)
    offset = Matrix.Rotation(0.7, 3, "Z") @ (video_camera.matrix_world.translation - head)
    camera.location = head + offset
    camera.rotation_euler = (-offset).to_track_quat("-Z", "Y").to_euler()
    scene.camera = camera
    return camera


def main(args: dict) -> dict:
    from blender_addon.ui import engine

    scene, _prefs, writer = connected_scene_with_job(args)
    setup_cycles(scene)
    frames, out = [int(f) for f in args["frames"]], Path(args["out"])
    video = render_frames(scene, frames, out / "video")
    scene.frame_set(frames[0])
    side_camera(scene, writer.camera, writer.head.matrix_world.translation.copy())
    status = bpy.ops.dlatrack.relight_camera()
    nodes = writer.material.node_tree.nodes
    relit = bpy.path.abspath(nodes[material.NODE_FOR_KIND["relit"]].image.filepath)
    side = render_frames(scene, frames, out / "side")
    engine.disconnect()
    blender_addon.unregister()
    return {"video": video, "side": side, "relight_status": sorted(status), "side_relit_image": relit}
