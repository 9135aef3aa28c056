"""The 3D View sidebar tab "DLATrack": engine, avatar, video, tracking, relighting."""

from __future__ import annotations

import bpy

from ..blender import material
from ..io.job_summary import cached_summary
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
        starting = engine.launch()
        if starting is not None:
            box.label(text=f"starting… {starting.elapsed_s:.0f} s", icon="SORTTIME")
            box.operator("dlatrack.engine_stop", text="Cancel Start", icon="CANCEL")
        elif engine.client() is None:
            if engine.launch_error():
                box.label(text=f"did not start: {engine.launch_error()[:60]}", icon="ERROR")
            box.label(text="not connected", icon="UNLINKED")
            box.operator("dlatrack.engine_connect", icon="PLAY")
        else:
            info = engine.info()
            box.label(text=f"{info.get('engine_version', '?')} on {info.get('device', '?')}", icon="LINKED")
            if engine.remote():  # inputs are uploaded and results mirrored; Adapt Lighting needs a local one
                box.label(text=f"remote: {getattr(engine.client(), 'host', '?')}", icon="WORLD")
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
            draw_result(layout, settings)

        box = layout.box()
        box.label(text="Relighting", icon="LIGHT")
        avatar = settings.avatar_object
        if material.avatar_material(avatar) is not None:
            box.prop(settings, "show_relit", text="Show relit texture")
        box.operator("dlatrack.relight_camera", icon="CAMERA_DATA")


def draw_result(layout: bpy.types.UILayout, settings: bpy.types.PropertyGroup) -> None:
    """The last job at a glance: PSNR, frames where the face was lost, and the side-by-side preview."""
    summary = cached_summary(bpy.path.abspath(settings.job_folder)) if settings.job_folder else None
    if summary is None:
        return
    box = layout.box()
    box.label(text="Result", icon="GRAPH")
    if summary.psnr is not None:
        box.label(text=f"PSNR {summary.psnr:.1f} dB")
    lost = len(summary.lost_frames)
    box.label(text=f"tracking lost in {lost} frame{'s' if lost != 1 else ''}", icon="ERROR" if lost else "CHECKMARK")
    row = box.row()
    row.enabled = summary.preview is not None
    row.operator("dlatrack.show_comparison", icon="SEQUENCE")


CLASSES = [VIEW3D_PT_dlatrack]
