"""A Blender camera matching the video camera, with the video as its background."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import bpy
from mathutils import Matrix


def ensure_camera(name: str, collection: bpy.types.Collection) -> bpy.types.Object:
    obj = bpy.data.objects.get(name)
    if obj is None or obj.type != "CAMERA":
        obj = bpy.data.objects.new(name, bpy.data.cameras.new(name))
        collection.objects.link(obj)
    return obj


def apply_camera(
    scene: bpy.types.Scene,
    obj: bpy.types.Object,
    settings: Mapping[str, float | str],
    matrix_world,
    width: int,
    height: int,
) -> None:
    """Set intrinsics (lens, sensor fit, shifts), render size/pixel aspect and the camera's placement.

    `settings` comes from `io.convert.intrinsics_to_blender_camera`, `matrix_world` from
    `io.convert.opencv_extrinsics_to_camera_matrix`.
    """
    data = obj.data
    data.type = "PERSP"
    data.sensor_fit = str(settings["sensor_fit"])
    data.sensor_width = float(settings["sensor_width"])
    data.sensor_height = float(settings["sensor_height"])
    data.lens = float(settings["lens"])
    data.shift_x = float(settings["shift_x"])
    data.shift_y = float(settings["shift_y"])
    data.clip_start = 0.01
    data.clip_end = 100.0
    obj.matrix_world = Matrix([list(map(float, row)) for row in matrix_world])
    scene.camera = obj
    render = scene.render
    render.resolution_x = int(width)
    render.resolution_y = int(height)
    render.resolution_percentage = 100
    render.pixel_aspect_x = float(settings["pixel_aspect_x"])
    render.pixel_aspect_y = float(settings["pixel_aspect_y"])


def set_background_video(
    obj: bpy.types.Object, video: str | Path, first_scene_frame: int, frame_count: int
) -> bpy.types.Image | None:
    """Show the video (a movie file, or the first image of a numbered sequence) behind the camera view.

    Video frame 0 shows at scene frame `first_scene_frame`. Returns None when the file does not exist
    (the clip may live on the engine's machine), leaving the camera without a background.
    """
    path = Path(video)
    if path.is_dir():  # a folder of frames: use its first image as a sequence
        images = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if not images:
            return None
        path = images[0]
    if not path.is_file():
        return None
    image = bpy.data.images.load(str(path), check_existing=True)
    if image.source == "FILE" and path.suffix.lower() in (".png", ".jpg", ".jpeg"):
        image.source = "SEQUENCE"
    data = obj.data
    data.show_background_images = True
    background = data.background_images[0] if len(data.background_images) else data.background_images.new()
    background.image = image
    background.alpha = 1.0
    background.display_depth = "BACK"
    user = background.image_user
    user.frame_start = int(first_scene_frame)
    user.frame_duration = int(frame_count)
    # Movies number frames from 1; sequences use the number in the file name (first one = path's).
    user.frame_offset = 0 if image.source == "MOVIE" else _sequence_number(path) - 1
    user.use_auto_refresh = True
    return image


def _sequence_number(path: Path) -> int:
    digits = ""
    for char in reversed(path.stem):
        if not char.isdigit():
            break
        digits = char + digits
    return int(digits) if digits else 1
