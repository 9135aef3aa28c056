"""Repository-wide rules that are cheap to check: lint clean, no oversized artefacts, add-on stays torch-free."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_FILE_BYTES = 25 * 1024 * 1024


def _ruff() -> str:
    found = shutil.which("ruff", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail("ruff is not installed in the test environment (python3 install.py --dev installs it)")
    return found


def test_ruff_reports_nothing() -> None:
    result = subprocess.run([_ruff(), "check", "--no-cache", str(REPO)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _tracked_files() -> list[Path]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=False)
    if listing.returncode != 0:
        pytest.fail(f"git ls-files failed: {listing.stderr.decode()}")
    return [REPO / name for name in listing.stdout.decode().split("\0") if name]


def test_no_tracked_file_over_25_mb() -> None:
    big = [f"{p.relative_to(REPO)} ({p.stat().st_size >> 20} MB)" for p in _tracked_files()
           if p.is_file() and p.stat().st_size > MAX_FILE_BYTES]
    assert not big, f"artefacts over 25 MB must be regenerated, not committed: {big}"


def test_blender_addon_imports_no_torch_or_engine() -> None:
    """Blender's Python has no torch: the add-on may use only stdlib, numpy, bpy and its own modules."""
    offenders = []
    for path in (REPO / "blender_addon").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names
                          if n.split(".")[0] in {"torch", "dlatrack_engine", "cv2", "imageio", "safetensors"}]
    assert not offenders, offenders
