"""Inside an interactive Blender: Adapt Lighting (modal) against a real engine, then Track Video reusing the
stored lighting, as a person would (issue 27). Helpers and the pump timing come from drive_track.py."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from pathlib import Path

import addon_utils
import bpy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drive_track import ADDON, Watch, addon_ui, job_outcome, reraise, time_pumps, wait

from blender_addon.docs.window_driver import count_draws, in_view3d, show_dlatrack_tab, view3d


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
    addon_utils.enable(ADDON, default_set=True, handle_error=reraise)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    engine_ui, track_ui = addon_ui()
    prefs.engine_mode, prefs.engine_python, prefs.output_dir = "LOCAL", args["engine_python"], args["jobs"]
    window = bpy.context.window_manager.windows[0]
    scene = window.scene
    for obj in list(scene.objects):
        bpy.data.objects.remove(obj)
    area, _ = view3d(window)
    area.spaces.active.show_region_ui = True
    drawn = {"count": 0}
    count_draws(drawn)
    time_pumps()
    yield from show_dlatrack_tab(window, drawn)
    settings = scene.dlatrack
    settings.avatar_path, settings.video_path = args["package"], args["video"]
    settings.key_frames, settings.write_mode, settings.lighting_name = args["key_frames"], "SHAPE_KEYS", "room"
    with in_view3d(window):
        out["import"] = list(bpy.ops.dlatrack.import_avatar())
        out["connect"] = list(bpy.ops.dlatrack.engine_connect())
    yield 0.2

    # 1. Adapt Lighting: modal, progress in the panel, the lighting stored in the scene with its preview.
    watch = run_operator(window, scene, "adapt_lighting", args["adapt"])
    run = track_ui.active_run(scene)
    yield from wait(watch, lambda: not settings.running, 120, "adapt: operator ended")
    lightings = [{"name": item.name, "folder": item.folder, "model": item.model, "key_frames": item.key_frames,
                  "preview_size": list(item.preview.size) if item.preview else None}
                 for item in settings.lightings]  # fmt: skip
    out["adapt"] = {**job_outcome(scene, run, watch), "lightings": lightings}
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
    out["track"] = {**job_outcome(scene, run, watch), "seconds": time.monotonic() - started}
    out["engine_alive"] = engine_ui.client() is not None
    return out
