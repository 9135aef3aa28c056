"""Screenshot of the "DLATrack" sidebar tab in a real Blender window, after tracking a few sample frames.

Runs in an interactive Blender (a display is needed; Xvfb is enough):

    DLATRACK_CACHE=$(mktemp -d) LP_NUM_THREADS=1 xvfb-run -s "-screen 0 1280x800x24" \
        blender --factory-startup --window-geometry 0 0 1280 800 \
        --python blender_addon/docs/screenshot_panel.py -- OUT.png [--engine-python .venv/bin/python] \
        [--frames 2] [--preset FAST] [--video V] [--avatar A]
    .venv/bin/python -c "from PIL import Image; Image.open('OUT.png').convert('RGB').quantize(256).save(
        'blender_addon/docs/panel.png', optimize=True)"    # 256 colours: < 300 KB

(DLATRACK_CACHE keeps the engine's job registry out of the repository's cache; one Mesa thread keeps redraws
quick on a busy CPU.)

The add-on is enabled and used through its own operators: Import Avatar, Start / Connect Engine (a local
engine, started in the background), Track Video (modal, pumped by Blender's event loop), then the 3D View
shows the relit avatar over the video through the tracked camera with the sidebar on the DLATrack tab (its
Result box: PSNR, frames lost, Show Comparison), and the 3D View area is saved as PNG.
Blender 3.4 has no API to pick a sidebar tab, so the script scrolls the sidebar's tab strip (xdotool) until
the panel's draw() runs. Blender quits when done.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import bpy

REPO = Path(__file__).resolve().parents[2]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(REPO))

import addon_utils  # noqa: E402

from blender_addon.docs.window_driver import count_draws, in_view3d, show_dlatrack_tab, view3d  # noqa: E402

log = logging.getLogger("dlatrack.screenshot")
CLIP = REPO / "sample_scenes" / "clips" / "warm_key_cool_fill"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="blender --python screenshot_panel.py --", description=__doc__.split("\n")[0])
    parser.add_argument("out", help="PNG to write (the 3D View area)")
    parser.add_argument("--engine-python", default=str(REPO / ".venv" / "bin" / "python"))
    parser.add_argument("--video", default=str(CLIP / "video.mp4"))
    parser.add_argument("--avatar", default=str(REPO / "sample_scenes" / "avatar"))
    parser.add_argument("--frames", type=int, default=2, help="video frames to track")
    parser.add_argument("--key-frames", type=int, default=2)
    parser.add_argument("--preset", default="FAST", choices=["PREVIEW", "FAST", "PAPER"])
    return parser.parse_args(sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else [])


def steps(args: argparse.Namespace) -> Iterator[float]:
    addon_utils.enable("blender_addon", default_set=True)
    prefs = bpy.context.preferences.addons["blender_addon"].preferences
    prefs.engine_mode, prefs.engine_python = "LOCAL", args.engine_python
    prefs.output_dir = tempfile.mkdtemp(prefix="dlatrack-screenshot-")
    window = bpy.context.window_manager.windows[0]
    scene = window.scene
    for obj in list(scene.objects):
        bpy.data.objects.remove(obj)
    settings = scene.dlatrack
    settings.avatar_path, settings.video_path = args.avatar, args.video
    settings.frame_count, settings.key_frames, settings.preset = args.frames, args.key_frames, args.preset
    from blender_addon.ui import engine

    with in_view3d(window):
        bpy.ops.dlatrack.import_avatar()
        bpy.ops.dlatrack.engine_connect()  # starts the engine in the background
    while engine.client() is None:
        if engine.launch_error():
            raise RuntimeError(engine.launch_error())
        yield 0.5
    with in_view3d(window):
        bpy.ops.dlatrack.track_video("INVOKE_DEFAULT")
    started = time.monotonic()
    while settings.running:
        yield 0.5
    log.info("tracked %d frames in %.0f s: %s", args.frames, time.monotonic() - started, settings.status)
    area, _ = view3d(window)
    space = area.spaces.active
    space.shading.type = "MATERIAL"
    space.overlay.show_floor = space.overlay.show_axis_x = space.overlay.show_axis_y = False
    space.region_3d.view_perspective = "CAMERA"
    space.show_region_ui = True
    scene.frame_set(scene.frame_start + 1)
    with in_view3d(window):
        bpy.ops.view3d.view_center_camera()
    yield 0.5
    drawn = {"count": 0}
    restore_draw = count_draws(drawn)
    try:
        yield from show_dlatrack_tab(window, drawn)
    finally:
        restore_draw()
    yield 1.0  # Material Preview compiles its shaders on the CPU (llvmpipe)
    with in_view3d(window):
        bpy.ops.screen.screenshot_area(filepath=str(Path(args.out).resolve()))
    log.info("wrote %s", args.out)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="dlatrack: %(message)s")
    bpy.context.preferences.view.show_splash = False
    args = parse_args()
    state: dict = {"steps": steps(args)}

    def tick() -> float | None:
        try:
            return next(state["steps"])
        except StopIteration:
            pass
        except Exception:
            log.exception("screenshot failed")
        bpy.ops.dlatrack.engine_stop()
        with bpy.context.temp_override(window=bpy.context.window_manager.windows[0]):
            bpy.ops.wm.quit_blender()
        return None

    bpy.app.timers.register(tick, first_interval=1.0)


main()
