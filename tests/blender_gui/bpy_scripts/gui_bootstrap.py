"""Started by `blender --python` (GUI): advance a script's `steps(args)` generator from a `bpy.app.timers` timer.

Each `yield seconds` returns control to Blender's event loop for that long. When the generator returns (or
raises), the result (or traceback) is written as JSON and Blender quits.
argv after `--`: script, args.json, result.json, repository root.
"""

from __future__ import annotations

import json
import logging
import runpy
import sys
import traceback

import bpy

SCRIPT, ARGS, RESULT, REPO = sys.argv[sys.argv.index("--") + 1 :][:4]
sys.path.insert(0, REPO)
# The scripts log each step to stdout: when Blender itself crashes, the last line says where.
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="dlatrack-gui %(relativeCreated)6.0f ms: %(message)s")
# Without a .blend on the command line Blender would open its splash screen over the window.
bpy.context.preferences.view.show_splash = False
_state: dict = {"steps": None}


def _finish(payload: dict) -> None:
    with open(RESULT, "w") as handle:
        json.dump(payload, handle)
    window = bpy.context.window_manager.windows[0]
    with bpy.context.temp_override(window=window):
        bpy.ops.wm.quit_blender()


def _tick() -> float | None:
    try:
        if _state["steps"] is None:
            with open(ARGS) as handle:
                args = json.load(handle)
            _state["steps"] = runpy.run_path(SCRIPT, run_name="dlatrack_gui_check")["steps"](args)
        return float(next(_state["steps"]))
    except StopIteration as stop:
        _finish({"ok": True, "result": stop.value})
    except BaseException:
        _finish({"ok": False, "traceback": traceback.format_exc()})
    return None


bpy.app.timers.register(_tick, first_interval=1.0)
