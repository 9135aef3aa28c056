"""Render the README's frames from a .blend saved by batch.py: the video camera (relit, then fully-lit), then
a side camera before and after "Relight for Camera" (needs the engine: started from the given venv Python).

    .venv-blender/bin/python blender_addon/docs/render_relit_views.py SCENE.blend ENGINE_PYTHON FRAME OUT_DIR
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import bpy  # noqa: E402


def render(scene: bpy.types.Scene, path: Path) -> None:
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def main(blend: str, engine_python: str, frame: int, out_dir: str) -> None:
    import addon_utils

    bpy.ops.wm.open_mainfile(filepath=blend)
    addon_utils.enable("blender_addon", default_set=True)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.engine_mode, prefs.engine_python = "LOCAL", engine_python
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 16
    scene.render.film_transparent = False
    scene.frame_set(frame)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    render(scene, out / "video_camera_relit.png")
    scene.dlatrack.show_relit = False  # the sidebar's switch: the fully-lit DAM texture
    render(scene, out / "video_camera_fully_lit.png")
    scene.dlatrack.show_relit = True
    # A camera 35 degrees round the head, at the head's distance, looking at it.
    head = scene.objects["DLATrack Head"].matrix_world.translation.copy()
    video_cam = scene.camera
    distance = (head - video_cam.matrix_world.translation).length
    side = bpy.data.objects.new("Side", video_cam.data.copy())
    scene.collection.objects.link(side)
    angle = math.radians(35)
    side.location = (head.x - distance * math.sin(angle), head.y - distance * math.cos(angle), head.z)
    direction = head - side.location
    side.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    side.data.shift_x = side.data.shift_y = 0.0
    scene.camera = side
    render(scene, out / "side_camera_before_relight.png")
    assert bpy.ops.dlatrack.relight_camera() == {"FINISHED"}
    render(scene, out / "side_camera_relit.png")
    from blender_addon.ui import engine

    engine.disconnect()


if __name__ == "__main__":
    main(sys.argv[-4], sys.argv[-3], int(sys.argv[-2]), sys.argv[-1])
