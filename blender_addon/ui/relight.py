"""Relight for camera: re-decode the view-dependent textures for the active camera's viewpoint.

The DAM texture depends on the view vector (Eq. 1) and the lighting gain/bias on head pose and view
(Eq. 3), so a camera other than the video's sees a different fully-lit and relit texture — the paper's
"relit avatar under different viewpoints". The engine decodes one texture pair per tracked frame for the
camera's direction relative to the head (with the job's adapted lighting); they are stored under the job
folder's `textures/view_<camera>/` and the material's image sequences are swapped to them.
"""

from __future__ import annotations

import bpy
import numpy as np

from ..blender import material
from ..blender.scene import apply_textures
from ..io.client import EngineError
from ..io.relight import decode_view_textures
from ..io.result import TrackResult, view_name, view_vectors_for_cameras
from . import engine


def camera_centres(scene: bpy.types.Scene, camera: bpy.types.Object, scene_frames: np.ndarray) -> np.ndarray:
    """Camera centre (Blender world) per frame; evaluated per frame only when the camera is animated."""
    animated = camera.animation_data is not None or camera.parent is not None or camera.constraints
    if not animated:
        return np.asarray(camera.matrix_world.translation)[None]
    current = scene.frame_current
    centres = []
    for frame in scene_frames:
        scene.frame_set(int(frame))
        centres.append(np.asarray(camera.matrix_world.translation))
    scene.frame_set(current)
    return np.stack(centres)


class DLATRACK_OT_relight_camera(bpy.types.Operator):
    """Re-decode the fully-lit and relit textures for the active camera's viewpoint and show them"""

    bl_idname = "dlatrack.relight_camera"
    bl_label = "Relight for Camera"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        settings = getattr(context.scene, "dlatrack", None)
        return bool(settings and settings.job_folder and settings.avatar_object and context.scene.camera)

    def execute(self, context: bpy.types.Context) -> set[str]:
        scene, settings = context.scene, context.scene.dlatrack
        camera = scene.camera
        try:
            result = TrackResult(bpy.path.abspath(settings.job_folder))
            frames = result.read()
            if len(frames) == 0:
                raise RuntimeError("the job has no tracked frames yet")
            views = view_vectors_for_cameras(frames, camera_centres(scene, camera, frames.scene_frames))
            client = engine.connect(context)
            name = view_name(camera.name)
            avatar_id = engine.avatar_id(engine.avatar_package(settings))
            indices, job_id = [int(i) for i in frames.video_indices], settings.job_id or None
            try:
                decode_view_textures(client, avatar_id, result.folder, indices, views, name, job_id=job_id)
            except EngineError as exc:
                if exc.code != "job_not_found":
                    raise
                # An engine that did not run this job: let it read the job folder (if it can see it).
                decode_view_textures(client, avatar_id, result.folder, indices, views, name)
            avatar_material = material.avatar_material(settings.avatar_object)
            if avatar_material is None:
                raise RuntimeError(
                    f"object '{settings.avatar_object.name}' has no DLATrack material (import the avatar again)"
                )
            kinds = apply_textures(avatar_material, result, view=name)
            if not kinds:
                raise RuntimeError(f"the engine wrote no textures for view '{name}'")
        except Exception as exc:  # engine errors carry the engine's message
            self.report({"ERROR"}, f"DLATrack relight: {exc}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"relit {len(frames)} frames for camera '{camera.name}' ({', '.join(kinds)})")
        return {"FINISHED"}


CLASSES = [DLATRACK_OT_relight_camera]
