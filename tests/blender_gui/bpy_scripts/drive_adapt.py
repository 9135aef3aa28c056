"""Inside an interactive Blender: Adapt Lighting (modal) against a real engine, Track Video reusing the stored
lighting, and a real ESC key press stopping a second Adapt Lighting, as a person would (issue 27). Helpers
and the pump timing come from drive_track.py."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drive_track import (
    Watch,
    addon_ui,
    computing,
    engine_started,
    job_outcome,
    job_settings,
    open_sidebar,
    press_escape,
    wait,
)

from blender_addon.docs.window_driver import in_view3d


def run_operator(window: bpy.types.Window, scene: bpy.types.Scene, operator: str, request: list) -> Watch:
    start, count, preset = request
    settings = scene.dlatrack
    settings.frame_start, settings.frame_count, settings.preset = start, count, preset
    with in_view3d(window):
        outcome = getattr(bpy.ops.dlatrack, operator)("INVOKE_DEFAULT")
    if outcome != {"RUNNING_MODAL"}:
        raise RuntimeError(f"{operator} returned {outcome}")
    return Watch(scene)


def steps(args: dict) -> Iterator[float]:
    out: dict = {"blender_version": bpy.app.version_string}
    window, scene, area, drawn = yield from open_sidebar(args)
    engine_ui, track_ui = addon_ui()
    settings = job_settings(scene, args, lighting_name="room")
    with in_view3d(window):
        out["import"] = list(bpy.ops.dlatrack.import_avatar())
        out["connect"] = list(bpy.ops.dlatrack.engine_connect())
    yield from engine_started(scene, engine_ui)

    # 1. Adapt Lighting: modal, progress in the panel, the lighting stored in the scene with its preview.
    watch = run_operator(window, scene, "adapt_lighting", args["adapt"])
    run = track_ui.active_run(scene)
    yield from wait(watch, lambda: not settings.running, 120, "adapt: operator ended")
    lightings = [{"name": item.name, "folder": item.folder, "model": item.model, "key_frames": item.key_frames,
                  "preview_size": list(item.preview.size) if item.preview else None}
                 for item in settings.lightings]  # fmt: skip
    out["adapt"] = {**job_outcome(scene, run, watch), "lightings": lightings, "scene_job_folder": settings.job_folder}
    drawn["count"] = 0
    area.tag_redraw()
    yield 0.3  # the Lighting sub-panel draws the list and the preview
    out["panel_draws_after_adapt"] = drawn["count"]

    # 2. Track Video with the stored lighting: step 2 skipped.
    settings.lighting_mode = "STORED"
    watch = run_operator(window, scene, "track_video", args["track"])
    run = track_ui.active_run(scene)
    started = time.monotonic()
    yield from wait(watch, lambda: not settings.running, 180, "track with stored lighting: operator ended")
    out["track"] = {**job_outcome(scene, run, watch), "seconds": time.monotonic() - started,
                    "scene_job_folder": settings.job_folder}  # fmt: skip
    out["engine_alive"] = engine_ui.client() is not None

    # 3. ESC, pressed on the keyboard while Adapt Lighting computes: the job stops, nothing is stored.
    watch = run_operator(window, scene, "adapt_lighting", args["escape"])
    run = track_ui.active_run(scene)
    yield from wait(watch, lambda: computing(scene), 60, "adapt escape: job computing")
    press_escape(window)
    pressed = time.monotonic()
    yield from wait(watch, lambda: not settings.running, 30, "adapt escape: operator ended")
    out["escape"] = {**job_outcome(scene, run, watch), "end_after_s": time.monotonic() - pressed,
                     "lightings": len(settings.lightings), "scene_job_folder": settings.job_folder}  # fmt: skip
    return out
