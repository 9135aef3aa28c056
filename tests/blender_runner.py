"""Run a bpy script in Blender's Python (the `bpy` wheel venv or a `blender` binary) and return its JSON result.

The engine's pytest (in `.venv`, with torch and numpy 2) cannot import `bpy` (its own numpy < 2, Python
3.11 build), so Blender-side checks run in a subprocess. The script defines `main(args: dict) -> dict`;
the bootstrap below imports it with the repository on `sys.path`, calls it, and writes the returned dict
as JSON. A failing script raises `BlenderScriptError` carrying its traceback and output.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from dlatrack_engine.paths import REPO_ROOT, blender_command

BOOTSTRAP = r"""
import json, runpy, sys, traceback
script, args_path, result_path, repo = sys.argv[-4:]
sys.path.insert(0, repo)
try:
    with open(args_path) as handle:
        args = json.load(handle)
    namespace = runpy.run_path(script, run_name="dlatrack_blender_check")
    result = namespace["main"](args)
    with open(result_path, "w") as handle:
        json.dump({"ok": True, "result": result}, handle)
except BaseException:
    with open(result_path, "w") as handle:
        json.dump({"ok": False, "traceback": traceback.format_exc()}, handle)
    sys.exit(1)
"""


class BlenderScriptError(RuntimeError):
    """The bpy script raised or Blender exited without a result; the message holds the traceback/output."""


def run_in_blender(
    script: str | Path, args: dict[str, Any] | None = None, timeout: float = 300, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run `script`'s `main(args)` inside Blender (extra environment `env`) and return the dict it returned."""
    script = Path(script).resolve()
    if not script.is_file():
        raise FileNotFoundError(f"bpy script {script} does not exist")
    with tempfile.TemporaryDirectory(prefix="dlatrack-bpy-") as tmp:
        bootstrap = Path(tmp) / "bootstrap.py"
        bootstrap.write_text(BOOTSTRAP)
        args_path, result_path = Path(tmp) / "args.json", Path(tmp) / "result.json"
        args_path.write_text(json.dumps(args or {}))
        command = blender_command(bootstrap, [str(script), str(args_path), str(result_path), str(REPO_ROOT)])
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", **(env or {}))
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BlenderScriptError(f"{script.name}: Blender did not finish within {timeout} s") from exc
        output = (done.stdout or "")[-4000:] + (done.stderr or "")[-4000:]
        if not result_path.is_file():
            raise BlenderScriptError(f"{script.name}: Blender exited with {done.returncode} and no result:\n{output}")
        payload = json.loads(result_path.read_text())
        if not payload["ok"]:
            raise BlenderScriptError(
                f"{script.name} failed inside Blender:\n{payload['traceback']}\n--- output ---\n{output}"
            )
        return payload["result"]
