"""Where things live: the repository, the Blender-side Python, the cache for generated data."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_SCENES = REPO_ROOT / "sample_scenes"


def cache_dir() -> Path:
    """Generated data (rendered light stage, clips, checkpoints) goes here, never into git."""
    root = Path(os.environ.get("DLATRACK_CACHE", REPO_ROOT / "cache"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def blender_python() -> list[str]:
    """Command prefix that runs a Python script inside Blender: `[*prefix, script, *args]`.

    Order: env `DLATRACK_BLENDER_PYTHON` (a Python with the `bpy` module), the repo's `.venv-blender`,
    then a `blender` binary on PATH (`blender -b --python script -- args`).
    """
    explicit = os.environ.get("DLATRACK_BLENDER_PYTHON")
    if explicit:
        return [explicit]
    venv_python = REPO_ROOT / ".venv-blender" / "bin" / "python"
    if venv_python.exists():
        return [str(venv_python)]
    binary = shutil.which("blender")
    if binary:
        return [binary, "-b", "--factory-startup", "--python-exit-code", "1", "--python"]
    raise FileNotFoundError(
        "no Blender Python found: run `python install.py` (creates .venv-blender with the bpy wheel), "
        "put `blender` on PATH, or set DLATRACK_BLENDER_PYTHON"
    )


def blender_command(script: Path, args: list[str]) -> list[str]:
    """Full command running `script` with `args` in Blender (handles the binary's `--` separator)."""
    prefix = blender_python()
    if prefix[-1] == "--python":
        return [*prefix, str(script), "--", *args]
    return [*prefix, str(script), *args]
