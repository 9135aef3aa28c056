"""Inside an interactive Blender: the Cycles render check (tests/blender/bpy_scripts/check_render.py) with Eevee.

Eevee needs an OpenGL context, which the bpy wheel's test runs do not have; here it is the window's (Mesa's
software renderer on Xvfb).
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import bpy


def steps(args: dict) -> Iterator[float]:
    for obj in list(bpy.data.objects):  # the startup cube would enclose the video camera at the origin
        bpy.data.objects.remove(obj)
    yield 0.1
    check = runpy.run_path(str(Path(args["repo"]) / "tests" / "blender" / "bpy_scripts" / "check_render.py"))
    return check["main"]({**args, "engine": "EEVEE"})
