"""Driving the add-on in a real Blender window (Xvfb + xdotool): shared by the panel screenshot script
(`screenshot_panel.py`) and the GUI tests (`tests/blender_gui/bpy_scripts/drive_track.py`)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import bpy


def view3d(window: bpy.types.Window) -> tuple[bpy.types.Area, bpy.types.Region]:
    """The window's largest 3D View area and its main region."""
    area = max((a for a in window.screen.areas if a.type == "VIEW_3D"), key=lambda a: a.width * a.height)
    return area, next(r for r in area.regions if r.type == "WINDOW")


def in_view3d(window: bpy.types.Window) -> AbstractContextManager:
    area, region = view3d(window)
    return bpy.context.temp_override(window=window, screen=window.screen, area=area, region=region)


def count_draws(drawn: dict) -> Callable[[], None]:
    """Count the registered panel's draw() calls in `drawn["count"]` (Blender looks the method up on every
    redraw); returns a function that restores the original draw()."""
    from blender_addon.ui import panel  # the module the enabled add-on registered

    original = panel.VIEW3D_PT_dlatrack.draw

    def draw(self: bpy.types.Panel, context: bpy.types.Context) -> None:
        drawn["count"] += 1
        original(self, context)

    panel.VIEW3D_PT_dlatrack.draw = draw

    def restore() -> None:
        panel.VIEW3D_PT_dlatrack.draw = original

    return restore


def show_dlatrack_tab(window: bpy.types.Window, drawn: dict) -> Iterator[float]:
    """Scroll the sidebar's tab strip (mouse wheel through xdotool) until the panel draws: Blender 3.4 has
    no API to pick a tab. `drawn` is the counter of `count_draws`."""
    area, _ = view3d(window)
    sidebar = next(r for r in area.regions if r.type == "UI")
    x = window.x + sidebar.x + sidebar.width - 8  # the tab strip at the sidebar's right edge, near its top
    y = window.y + window.height - (sidebar.y + sidebar.height - 60)
    for _ in range(8):
        drawn["count"] = 0
        area.tag_redraw()
        yield 0.3
        if drawn["count"]:
            return
        subprocess.run(["xdotool", "mousemove", str(x), str(y), "click", "5"], check=True, timeout=10)
    raise RuntimeError("the DLATrack sidebar tab never drew (8 wheel steps over the tab strip)")
