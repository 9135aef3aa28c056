"""The 3D View sidebar tab "DLATrack": engine, avatar, video, tracking, relighting."""

from __future__ import annotations

import bpy

from ..blender import material
from . import engine, track


class DLATrackPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "DLATrack"


class VIEW3D_PT_dlatrack(DLATrackPanel, bpy.types.Panel):
    bl_label = "DLATrack"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.dlatrack
        box = layout.box()
        box.label(text="Engine", icon="SYSTEM")
        if engine.client() is None:
            box.label(text="not connected", icon="UNLINKED")
            box.operator("dlatrack.engine_connect", icon="PLAY")
        else:
            info = engine.info()
            box.label(text=f"{info.get('engine_version', '?')} on {info.get('device', '?')}", icon="LINKED")
            box.operator("dlatrack.engine_stop", icon="QUIT")

        box = layout.box()
        box.label(text="Avatar", icon="USER")
        box.prop(settings, "avatar_path", text="")
        box.operator("dlatrack.import_avatar", icon="IMPORT")
        box.prop(settings, "avatar_object", text="")

        box = layout.box()
        box.label(text="Video", icon="FILE_MOVIE")
        box.prop(settings, "video_path", text="")
        row = box.row(align=True)
        row.prop(settings, "frame_start")
        row.prop(settings, "frame_count")
        row = box.row(align=True)
        row.prop(settings, "key_frames")
        row.prop(settings, "preset", text="")
        box.prop(settings, "write_mode")

        col = layout.column()
        if settings.running or track.active_run(context.scene) is not None:
            if hasattr(col, "progress"):  # Blender 4.0+
                col.progress(factor=settings.progress, text=settings.status or "tracking")
            else:  # older Blender: the progress property itself, as a slider labelled with the status
                col.prop(settings, "progress", text=settings.status or "tracking", slider=True)
            col.operator("dlatrack.cancel", icon="CANCEL")
        else:
            col.scale_y = 1.4
            col.operator("dlatrack.track_video", icon="TRACKING")
            if settings.status:
                layout.label(text=f"Last job: {settings.status}")

        box = layout.box()
        box.label(text="Relighting", icon="LIGHT")
        avatar = settings.avatar_object
        if material.avatar_material(avatar) is not None:
            box.prop(settings, "show_relit", text="Show relit texture")
        box.operator("dlatrack.relight_camera", icon="CAMERA_DATA")


CLASSES = [VIEW3D_PT_dlatrack]
