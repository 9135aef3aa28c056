"""Inside an interactive Blender: the sidebar's Track Video against a real engine, as a person would use it.

The add-on is enabled through addon_utils with a local engine in its preferences; Import Avatar, Start /
Connect Engine and Track Video are invoked in the 3D View's context (Track Video with INVOKE_DEFAULT, so it
runs as a modal operator on a window-manager timer). Four jobs: one runs to the end, one is stopped by a real
ESC key press (xdotool, through the X server), one by the Cancel operator (what the panel's button calls),
and in one the engine process is killed once its first frames are in the scene. Between steps the generator
yields, so Blender's event loop, the modal operator and the redraws run as usual; every tick records the
status texts and progress values the panel showed and the main loop's longest stall, and every pump of the
modal operator is timed (`time_pumps`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import addon_utils
import bpy

from blender_addon.docs.window_driver import count_draws, in_view3d, show_dlatrack_tab, view3d

log = logging.getLogger("dlatrack.gui")
ADDON = "blender_addon"


def addon_ui() -> tuple[ModuleType, ModuleType]:
    """The enabled add-on's engine and track modules (imported after addon_utils.enable, which may reload)."""
    from blender_addon.ui import engine, track

    return engine, track


PUMPS = {"count": 0, "max_s": 0.0, "max_blocked_s": 0.0}  # the modal operator's pumps during the current job


def thread_schedstat() -> tuple[float, float]:
    """(seconds on a CPU, seconds waiting for one) of the calling thread, from Linux's schedstat."""
    with open(f"/proc/self/task/{threading.get_native_id()}/schedstat") as handle:
        on_cpu, waiting = handle.read().split()[:2]
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def time_pumps() -> None:
    """Time every `TrackRun.pump()` the modal operator makes: the add-on's own share of a UI tick (draining
    the event queue, writing new frames into the scene), apart from Blender's redraws. `max_blocked_s` is
    the wall time in which the main thread neither ran nor waited for a CPU: time spent waiting on something
    (a socket, a lock), which on busy cores stays apart from the wall time that starvation stretches."""
    from blender_addon.blender.tracking import TrackRun

    original = TrackRun.pump

    def pump(self: TrackRun) -> Any:
        start, (cpu, queued) = time.monotonic(), thread_schedstat()
        try:
            return original(self)
        finally:
            wall = time.monotonic() - start
            cpu_after, queued_after = thread_schedstat()
            PUMPS["count"] += 1
            PUMPS["max_s"] = max(PUMPS["max_s"], wall)
            blocked = wall - (cpu_after - cpu) - (queued_after - queued)
            PUMPS["max_blocked_s"] = max(PUMPS["max_blocked_s"], blocked)

    TrackRun.pump = pump


class Watch:
    """What a person would have seen during one job, sampled on every tick of the driver."""

    def __init__(self, scene: bpy.types.Scene) -> None:
        self.scene, self.started = scene, time.monotonic()
        PUMPS.update(count=0, max_s=0.0, max_blocked_s=0.0)
        self.statuses: list[str] = []
        self.progress: list[float] = []
        self.frames_in_scene: list[int] = []
        self.max_stall_s, self._last = 0.0, time.monotonic()

    def sample(self) -> None:
        now = time.monotonic()
        self.max_stall_s, self._last = max(self.max_stall_s, now - self._last), now
        settings = self.scene.dlatrack
        if not self.statuses or self.statuses[-1] != settings.status:
            self.statuses.append(settings.status)
        if not self.progress or self.progress[-1] != round(settings.progress, 3):
            self.progress.append(round(settings.progress, 3))
        keys = frame_keys(settings.avatar_object)
        if not self.frames_in_scene or self.frames_in_scene[-1] != len(keys):
            self.frames_in_scene.append(len(keys))

    def summary(self) -> dict:
        return {"statuses": self.statuses, "progress": self.progress, "frames_in_scene": self.frames_in_scene,
                "max_stall_s": self.max_stall_s, "seconds": time.monotonic() - self.started,
                "pumps": PUMPS["count"], "max_pump_s": PUMPS["max_s"],
                "max_pump_blocked_s": PUMPS["max_blocked_s"]}  # fmt: skip


def frame_keys(obj: bpy.types.Object | None) -> list[str]:
    keys = obj.data.shape_keys if obj is not None else None
    return [k.name for k in keys.key_blocks if k.name.startswith("frame_")] if keys is not None else []


def engine_log_tail() -> str:
    """The end of the local engine's log (the add-on starts it with its log next to the connection file)."""
    engine_ui, _ = addon_ui()
    log_path = Path(str(engine_ui._default_connection_file()) + ".log")
    return log_path.read_text(errors="replace")[-3000:] if log_path.is_file() else f"(no {log_path})"


def wait(watch: Watch, done: Callable[[], bool], timeout: float, what: str) -> Iterator[float]:
    start = time.monotonic()
    while not done():
        if time.monotonic() > start + timeout:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s; panel showed {watch.statuses[-5:]}; "
                               f"engine log:\n{engine_log_tail()}")  # fmt: skip
        yield 0.05
        watch.sample()
    log.info("%s after %.1f s (panel: %s)", what, time.monotonic() - start, watch.statuses[-1:])


def start_job(window: bpy.types.Window, scene: bpy.types.Scene, request: list) -> Watch:
    """Set the sidebar's frame range and quality preset from `request` = [start, count, preset]; Track Video."""
    start, count, preset = request
    settings = scene.dlatrack
    settings.frame_start, settings.frame_count, settings.preset = start, count, preset
    log.info("Track Video: frames %d+%d, %s", start, count, preset)
    with in_view3d(window):
        outcome = bpy.ops.dlatrack.track_video("INVOKE_DEFAULT")
    if outcome != {"RUNNING_MODAL"}:
        raise RuntimeError(f"Track Video returned {outcome} for frames {start}+{count}")
    return Watch(scene)


def computing(scene: bpy.types.Scene) -> bool:
    """The engine is inside steps 1-3 (not queued): a cancel now must interrupt real work."""
    return scene.dlatrack.status.split(" ")[0] in ("init", "adapt", "track", "write")


def job_outcome(scene: bpy.types.Scene, run: Any, watch: Watch) -> dict:
    """After the operator ended: the engine's own view of the job, the folder and the scene."""
    engine_ui, track_ui = addon_ui()
    client = engine_ui.client()
    engine_state = client.job_status(run.session.job_id)["state"] if client is not None else None
    folder = Path(run.folder)
    return {
        **watch.summary(),
        "operator_running": scene.dlatrack.running or track_ui.active_run(scene) is not None,
        "final_status": scene.dlatrack.status,
        "engine_state": engine_state,
        "folder": str(folder),
        "frame_files": len(list((folder / "frames").glob("*.npz"))),
        "frame_keys": frame_keys(scene.dlatrack.avatar_object),
        "frames_written": run.session.frames_written,
    }


def press_escape(window: bpy.types.Window) -> None:
    """A real key press through the X server, with the pointer over the 3D View (no window manager: the
    keyboard focus follows the pointer)."""
    area, _ = view3d(window)
    x = window.x + area.x + area.width // 2
    y = window.y + window.height - (area.y + area.height // 2)
    subprocess.run(["xdotool", "mousemove", str(x), str(y), "key", "Escape"], check=True, timeout=10)


def reraise(exc: BaseException) -> None:
    """addon_utils prints a failing register() and carries on; a test must fail instead."""
    raise exc


def open_sidebar(args: dict) -> Generator[float, None, tuple]:
    """Enable the add-on (local engine, job folders under `args["jobs"]`), empty the startup scene, open the
    DLATrack tab with its draws counted and the modal pumps timed; -> (window, scene, 3D View area, draws)."""
    addon_utils.enable(ADDON, default_set=True, handle_error=reraise)
    prefs = bpy.context.preferences.addons[ADDON].preferences
    prefs.engine_mode, prefs.engine_python, prefs.output_dir = "LOCAL", args["engine_python"], args["jobs"]
    window = bpy.context.window_manager.windows[0]
    scene = window.scene
    for obj in list(scene.objects):  # the startup cube, light and camera
        bpy.data.objects.remove(obj)
    area, _ = view3d(window)
    area.spaces.active.show_region_ui = True
    drawn = {"count": 0}
    count_draws(drawn)
    time_pumps()
    yield from show_dlatrack_tab(window, drawn)
    return window, scene, area, drawn


def job_settings(scene: bpy.types.Scene, args: dict, **extra: Any) -> Any:
    """The sidebar's job settings from the driver's arguments, plus any `extra` property."""
    settings = scene.dlatrack
    settings.avatar_path, settings.video_path = args["package"], args["video"]
    settings.key_frames, settings.write_mode = args["key_frames"], "SHAPE_KEYS"
    for name, value in extra.items():
        setattr(settings, name, value)
    return settings


def engine_started(scene: bpy.types.Scene, engine_ui: ModuleType) -> Iterator[float]:
    """Wait for the local engine, which starts in the background (issue 21), to be connected."""
    yield from wait(Watch(scene), lambda: engine_ui.client() is not None or bool(engine_ui.launch_error()), 120,
                    "engine started")
    if engine_ui.client() is None:
        raise RuntimeError(f"the local engine did not start: {engine_ui.launch_error()}")


def steps(args: dict) -> Iterator[float]:
    out: dict = {"blender_version": bpy.app.version_string}
    window, scene, area, drawn = yield from open_sidebar(args)
    engine_ui, track_ui = addon_ui()
    settings = job_settings(scene, args)
    with in_view3d(window):
        out["import"] = list(bpy.ops.dlatrack.import_avatar())
        started = time.monotonic()
        out["connect"] = list(bpy.ops.dlatrack.engine_connect())
    # The engine starts in the background: the operator returns at once and the sidebar keeps drawing.
    out["connect_return_s"] = time.monotonic() - started
    drawn_before = drawn["count"]
    yield from engine_started(scene, engine_ui)
    out["connect_s"] = time.monotonic() - started
    out["panel_draws_while_starting"] = drawn["count"] - drawn_before
    out["engine"] = dict(engine_ui.info())
    engine_pid = engine_ui._state["process"].pid
    out["engine_pid"] = engine_pid
    out["avatar_vertices"] = len(settings.avatar_object.data.vertices)
    yield 0.2

    # 1. A job that runs to the end, then a screenshot of the window. (Blender 3.4's screen.screenshot on Mesa's
    # software GL segfaulted in ~1 of 5 runs when taken while the add-on's socket reader thread was streaming.)
    watch = start_job(window, scene, args["complete"])
    run = track_ui.active_run(scene)
    yield from wait(watch, lambda: not settings.running, 120, "complete: operator ended")
    log.info("screenshot")
    with in_view3d(window):
        bpy.ops.screen.screenshot(filepath=args["screenshot"])
    out["screenshot"] = args["screenshot"]
    out["complete"] = job_outcome(scene, run, watch)
    avatar_material = settings.avatar_object.active_material
    out["complete"]["images"] = {
        node.name: [node.image.source, Path(node.image.filepath).parent.name]
        for node in avatar_material.node_tree.nodes if node.type == "TEX_IMAGE" and node.image is not None
    }  # fmt: skip
    out["complete"]["scene_range"] = [scene.frame_start, scene.frame_end]
    with in_view3d(window):
        out["comparison"] = list(bpy.ops.dlatrack.show_comparison())
    editor = scene.sequence_editor
    strips = list(editor.strips if hasattr(editor, "strips") else editor.sequences) if editor else []
    out["comparison_strips"] = [[s.type, s.frame_start, s.frame_final_duration] for s in strips]

    # 2. ESC, pressed on the keyboard while the engine computes.
    watch = start_job(window, scene, args["escape"])
    run = track_ui.active_run(scene)
    yield from wait(watch, lambda: computing(scene), 60, "escape: job computing")
    log.info("ESC")
    press_escape(window)
    pressed = time.monotonic()
    yield from wait(watch, lambda: not settings.running, 30, "escape: operator ended")
    out["escape"] = {**job_outcome(scene, run, watch), "end_after_s": time.monotonic() - pressed}

    # 3. The Cancel button's operator.
    watch = start_job(window, scene, args["cancel"])
    run = track_ui.active_run(scene)
    yield from wait(watch, lambda: computing(scene), 60, "cancel: job computing")
    log.info("Cancel")
    with in_view3d(window):
        out["cancel_op"] = list(bpy.ops.dlatrack.cancel())
    pressed = time.monotonic()
    yield from wait(watch, lambda: not settings.running, 30, "cancel: operator ended")
    out["cancel"] = {**job_outcome(scene, run, watch), "end_after_s": time.monotonic() - pressed}

    # 4. The engine dies once the first batch of frames is in the scene.
    watch = start_job(window, scene, args["kill"])
    run = track_ui.active_run(scene)
    yield from wait(watch, lambda: run.session.frames_written > 0, 120, "kill: first frames in the scene")
    os.kill(engine_pid, signal.SIGSTOP)  # freeze it first: whether frames were still to come is then certain
    on_disk = len(list((Path(run.folder) / "frames").glob("*.npz")))
    if on_disk >= args["kill"][1]:
        os.kill(engine_pid, signal.SIGCONT)
        raise RuntimeError(f"kill: the engine wrote all {on_disk} frames before it could be killed")
    log.info("killing the engine (pid %d) with %d frame files on disk", engine_pid, on_disk)
    os.kill(engine_pid, signal.SIGKILL)
    killed = time.monotonic()
    written_at_kill = run.session.frames_written
    yield from wait(watch, lambda: not settings.running, 30, "kill: operator ended")
    out["kill"] = {**job_outcome(scene, run, watch), "end_after_s": time.monotonic() - killed,
                   "written_at_kill": written_at_kill, "connected_after": engine_ui.client() is not None}  # fmt: skip
    out["panel_draws_while_tracking"] = drawn["count"]
    drawn["count"] = 0
    area.tag_redraw()
    yield 0.3  # the panel keeps drawing after the engine is gone
    out["panel_draws_after_kill"] = drawn["count"]
    return out
