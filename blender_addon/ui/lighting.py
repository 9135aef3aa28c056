"""Adapt Lighting (modal, ESC cancels) and the sidebar's list of the scene's stored lightings.

Adapt Lighting runs steps 1-2 in the engine (an `adapt` job) on the chosen video and key frames and stores
the result as a named lighting of the scene: its folder on the engine's machine, the video, and a preview
(a key frame beside the avatar relit with it) to judge it by before tracking. Track Video then adapts anew
or reuses the selected lighting (`lighting_from`), skipping step 2 for every take shot in that room.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bpy

from ..io.lightings import adapted_lighting
from ..io.session import PumpReport, TrackSession
from ..io.wire.jobs import JobState
from . import engine
from .panel import DLATrackPanel
from .track import ModalJob, job_dir, sidebar_options


class AdaptRun:
    """One `adapt` job seen from the scene: no frames to write; the lighting is stored when it completes."""

    def __init__(self, scene: bpy.types.Scene, client: Any, job_record: dict, video: str, name: str) -> None:
        self.scene_name, self.video, self.name = scene.name, video, name
        self.session = TrackSession(client, job_record, lambda: 0)
        self.folder = Path(self.session.folder or "")
        self.stored: str | None = None

    def pump(self) -> PumpReport:
        return self.session.pump()

    def finish(self) -> None:
        if self.session.job.state is JobState.COMPLETED:
            self.stored = store_lighting(bpy.data.scenes[self.scene_name], self.name, str(self.folder), self.video)


def unique_name(settings: Any, wanted: str) -> str:
    names = {item.name for item in settings.lightings}
    name, n = wanted, 1
    while name in names:
        name, n = f"{wanted}.{n:03d}", n + 1
    return name


def store_lighting(scene: bpy.types.Scene, name: str, job_folder: str, video: str) -> str:
    """Add the finished job's lighting to the scene's list (selected); returns its name."""
    lighting = adapted_lighting(job_folder, video)
    settings = scene.dlatrack
    item = settings.lightings.add()
    item.name = unique_name(settings, name)
    item.folder, item.video, item.model = lighting.folder, lighting.video, lighting.model
    item.key_frames = ", ".join(str(k) for k in lighting.key_frames)
    if lighting.preview is not None:
        image = bpy.data.images.load(lighting.preview, check_existing=True)
        image.name = f"DLATrack lighting {item.name}"
        item.preview = image
    settings.lighting_index = len(settings.lightings) - 1
    return item.name


class DLATRACK_OT_adapt_lighting(ModalJob, bpy.types.Operator):
    """Adapt the lighting to the video (steps 1-2) and store it in the scene, to reuse on other takes (ESC cancels)"""

    bl_idname = "dlatrack.adapt_lighting"
    bl_label = "Adapt Lighting"
    result_job = False  # the sidebar's Result, Show Comparison and Relight keep the last tracked job

    def submit(self, context: bpy.types.Context, client: Any, video: str) -> AdaptRun:
        settings = context.scene.dlatrack
        options = sidebar_options(settings)
        if options.get("steps") == "landmarks":
            raise ValueError("the Preview quality runs step 1 alone: choose Fast or Paper to adapt a lighting")
        if engine.remote():  # its lighting folder and preview would stay on the engine's machine
            raise RuntimeError("Adapt Lighting needs a local engine for now; with a remote engine run `dlatrack "
                               "adapt` there and pass its folder to batch.py --lighting-from")  # fmt: skip
        package = engine.avatar_package(settings)
        out_dir = job_dir(context, video, package, {**options, "request": "adapt"})  # apart from track jobs
        record = client.adapt_job(video, engine.avatar_id(package), options=options, out_dir=out_dir)
        name = settings.lighting_name or Path(video.rstrip("/")).stem or "lighting"
        return AdaptRun(context.scene, client, record, video, name)

    def done_message(self, run: Any) -> str:
        return f"lighting '{run.stored}' stored" if run.stored else "no lighting stored"


class DLATRACK_UL_lightings(bpy.types.UIList):
    def draw_item(self, context: bpy.types.Context, layout: bpy.types.UILayout, data: Any, item: Any, icon: int,
                  active_data: Any, active_propname: str, index: int = 0) -> None:  # fmt: skip
        layout.prop(item, "name", text="", emboss=False, icon="LIGHT")
        layout.label(text=Path(item.video.rstrip("/")).name)


class VIEW3D_PT_dlatrack_lighting(DLATrackPanel, bpy.types.Panel):
    bl_label = "Lighting"
    bl_parent_id = "VIEW3D_PT_dlatrack"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.dlatrack
        layout.template_list("DLATRACK_UL_lightings", "", settings, "lightings", settings, "lighting_index", rows=2)
        row = layout.row(align=True)
        row.prop(settings, "lighting_name", text="")
        row.operator("dlatrack.adapt_lighting", icon="LIGHT_SUN")
        if 0 <= settings.lighting_index < len(settings.lightings):
            item = settings.lightings[settings.lighting_index]
            layout.label(text=f"{item.model}, key frames {item.key_frames}")
            if item.preview is not None:
                layout.template_icon(icon_value=item.preview.preview_ensure().icon_id, scale=6.0)
        layout.prop(settings, "lighting_mode", expand=True)


CLASSES = [DLATRACK_OT_adapt_lighting, DLATRACK_UL_lightings, VIEW3D_PT_dlatrack_lighting]
