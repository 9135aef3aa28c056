"""Track Video (modal) and Cancel.

The client's reader thread queues engine events; a window-manager timer wakes the modal operator on the
main thread, which pumps the session (never blocking on the socket) and writes finished frames into the
scene, so Blender stays responsive. ESC or Cancel asks the engine to stop; an engine that dies ends the
operator with its message and keeps every frame already written.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bpy

from ..blender.remote_run import RemoteTrackRun
from ..blender.scene import WriteOptions
from ..blender.tracking import TrackRun
from ..io.lightings import with_lighting
from ..io.options import job_folder_name, track_options
from . import engine, preferences

log = logging.getLogger(__name__)

_runs: dict[str, TrackRun] = {}  # scene name -> its running job


def active_run(scene: bpy.types.Scene) -> TrackRun | None:
    return _runs.get(scene.name)


def stop_all() -> None:
    for run in list(_runs.values()):
        run.session.cancel()
    _runs.clear()


def write_options(context: bpy.types.Context) -> WriteOptions:
    prefs = preferences.get(context)
    settings = context.scene.dlatrack
    options = WriteOptions(mode=settings.write_mode)
    if prefs is not None:
        options.mesh_cache_above = prefs.mesh_cache_above
        if prefs.output_dir:
            options.cache_dir = bpy.path.abspath(prefs.output_dir)
    return options


def sidebar_options(settings: Any) -> dict[str, Any]:
    """The request options the sidebar's frame range, K and quality make."""
    return track_options(settings.frame_start, settings.frame_count, settings.key_frames, settings.preset)


def job_dir(context: bpy.types.Context, video: str, package: str, request: Mapping[str, Any]) -> str | None:
    """The job folder under the preferences' output folder, one per request; None: the engine's own."""
    prefs = preferences.get(context)
    if not (prefs and prefs.output_dir):
        return None
    return str(Path(bpy.path.abspath(prefs.output_dir)) / job_folder_name(video, package, request))


def stored_lighting_folder(settings: Any) -> str | None:
    """The stored lighting Track Video reuses, or None to adapt anew (an error when none is selected)."""
    if settings.lighting_mode != "STORED":
        return None
    if not 0 <= settings.lighting_index < len(settings.lightings):
        raise ValueError("Track with 'Stored lighting' needs one: run Adapt Lighting first, then select it")
    return settings.lightings[settings.lighting_index].folder


class ModalJob:
    """The modal loop of an engine job (Track Video, Adapt Lighting): submit, pump on a timer, ESC cancels.
    A mixin, not an Operator subclass: Blender cannot register a subclass of a registered operator."""

    _timer = None
    # Whether the job becomes the scene's tracked job (job_id / job_folder: the Result box, Show Comparison,
    # Relight for Camera). An adapt job tracks no frame, so it leaves the last tracked job in place.
    result_job = True

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        settings = getattr(context.scene, "dlatrack", None)
        return settings is not None and settings.avatar_object is not None and not settings.running

    def execute(self, context: bpy.types.Context) -> set[str]:
        return self.invoke(context, None)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event | None) -> set[str]:
        if context.window is None:  # background mode: no event loop for a modal operator
            self.report({"ERROR"}, f"{self.bl_label} needs Blender's UI; headless, use blender_addon/batch.py")
            return {"CANCELLED"}
        settings = context.scene.dlatrack
        video = bpy.path.abspath(settings.video_path)
        if not video:
            self.report({"ERROR"}, "choose a video first")
            return {"CANCELLED"}
        try:
            run = self.submit(context, engine.connect(context), video)
        except Exception as exc:  # engine errors carry the engine's message
            self.report({"ERROR"}, f"DLATrack: {exc}")
            return {"CANCELLED"}
        _runs[context.scene.name] = run
        if self.result_job:
            settings.job_id, settings.job_folder = run.session.job_id, str(run.folder)
        settings.running, settings.progress, settings.status = True, 0.0, "queued"
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.progress_begin(0.0, 1.0)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def submit(self, context: bpy.types.Context, client: Any, video: str) -> Any:
        """Start the engine job; -> the run the modal loop pumps (`session`, `folder`, `pump`, `finish`)."""
        raise NotImplementedError

    def done_message(self, run: Any) -> str:
        raise NotImplementedError

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        run = active_run(context.scene)
        if run is None:
            return self._end(context, {"CANCELLED"})
        if event.type == "ESC" and event.value == "PRESS":
            run.session.cancel()
            context.scene.dlatrack.status = "cancelling"
            return {"RUNNING_MODAL"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            report = run.pump()
        except Exception as exc:
            log.exception("DLATrack: writing results failed")
            self.report({"ERROR"}, f"DLATrack: writing results failed: {exc}")
            run.session.cancel()
            return self._end(context, {"CANCELLED"})
        for warning in report.warnings:  # e.g. several faces in view: the user should know who is tracked
            self.report({"WARNING"}, f"DLATrack: {warning}")
        settings = context.scene.dlatrack
        settings.progress, settings.status = report.fraction, report.text
        context.window_manager.progress_update(report.fraction)
        if context.workspace is not None:
            context.workspace.status_text_set(f"DLATrack: {report.text} — ESC to cancel")
        for area in context.screen.areas if context.screen else []:
            if area.type == "VIEW_3D":
                area.tag_redraw()
        if not report.finished:
            return {"RUNNING_MODAL"}
        try:
            run.finish()
        except Exception as exc:  # keep what was written; say why the rest is missing
            log.exception("DLATrack: final writes failed")
            self.report({"ERROR"}, f"DLATrack: final writes failed: {exc}")
            return self._end(context, {"CANCELLED"})
        if report.error:
            self.report({"ERROR"}, f"DLATrack: {report.error} ({run.session.frames_written} frames kept)")
        else:
            self.report({"INFO"}, f"DLATrack: {report.state.value}, {self.done_message(run)}")
        return self._end(context, {"FINISHED"} if report.state.value == "completed" else {"CANCELLED"})

    def _end(self, context: bpy.types.Context, result: set[str]) -> set[str]:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        run = _runs.pop(context.scene.name, None)
        if run is not None and run.session.engine_lost:  # the panel offers Start / Connect again
            engine.disconnect()
        settings = context.scene.dlatrack
        settings.running = False
        settings.status = "done" if "FINISHED" in result else "stopped"
        return result


class DLATRACK_OT_track_video(ModalJob, bpy.types.Operator):
    """Track the video with the avatar in the engine and animate the avatar as frames arrive (ESC cancels)"""

    bl_idname = "dlatrack.track_video"
    bl_label = "Track Video"

    def submit(self, context: bpy.types.Context, client: Any, video: str) -> TrackRun:
        settings = context.scene.dlatrack
        options = with_lighting(sidebar_options(settings), stored_lighting_folder(settings))
        package = engine.avatar_package(settings)
        avatar, scene = settings.avatar_object, context.scene
        if engine.remote():  # uploads on a thread, results mirrored into the output folder, no path sent
            run = RemoteTrackRun(scene, avatar, client, package, video, options, write_options(context))
            if run.calibration.assumed:
                self.report({"WARNING"}, f"DLATrack: {run.calibration.warning(video)}")
            return run
        out_dir = job_dir(context, video, package, options)
        avatar_id = engine.avatar_id(package)
        return TrackRun.submit(scene, avatar, client, avatar_id, video, options, out_dir, write_options(context))

    def done_message(self, run: Any) -> str:
        return f"{run.session.frames_written} frames written"


class DLATRACK_OT_cancel(bpy.types.Operator):
    """Stop the running tracking job (frames already written stay)"""

    bl_idname = "dlatrack.cancel"
    bl_label = "Cancel"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return active_run(context.scene) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        run = active_run(context.scene)
        if run is not None:
            run.session.cancel()
            context.scene.dlatrack.status = "cancelling"
        return {"FINISHED"}


CLASSES = [DLATRACK_OT_track_video, DLATRACK_OT_cancel]
