"""Inside Blender: build the add-on as a 4.2+ extension zip, install it from the zip, enable, disable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import bpy


def main(args: dict) -> dict:
    import addon_utils  # importable only once bpy is loaded

    work = Path(args["work"])
    # Blender's packager skips symlinks; the add-on's io/wire is one (shared with the engine), so stage a
    # dereferenced copy first — what install.py does when it builds the zip.
    stage = work / "stage" / "dlatrack"
    shutil.copytree(args["addon"], stage, symlinks=False, ignore=shutil.ignore_patterns("__pycache__", "docs"))
    tool = Path(addon_utils.paths()[0]).parent / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"
    if not tool.is_file():
        tool = (
            next(Path(p) for p in addon_utils.paths() if (Path(p) / "bl_pkg").is_dir())
            / "bl_pkg"
            / "cli"
            / "blender_ext.py"
        )
    checks = {}
    for command in (["validate", str(stage)], ["build", "--source-dir", str(stage), "--output-dir", str(work)]):
        done = subprocess.run([sys.executable, str(tool), *command], capture_output=True, text=True, check=False)
        checks[command[0]] = done.returncode == 0 or done.stdout + done.stderr
    archive = next(work.glob("dlatrack-*.zip"))
    bpy.ops.extensions.package_install_files(filepath=str(archive), repo="user_default", enable_on_install=True)
    module = "bl_ext.user_default.dlatrack"
    enabled = module in bpy.context.preferences.addons
    registered = hasattr(bpy.types, "VIEW3D_PT_dlatrack") and hasattr(bpy.types.Scene, "dlatrack")
    prefs = bpy.context.preferences.addons[module].preferences.mesh_cache_above if enabled else None
    addon_utils.disable(module, default_set=True)
    return {
        "checks": checks, "zip": archive.name, "enabled": enabled, "registered": registered, "prefs": prefs,
        "unregistered": not hasattr(bpy.types, "VIEW3D_PT_dlatrack") and not hasattr(bpy.types.Scene, "dlatrack"),
    }  # fmt: skip
