"""The add-on zip that install.py builds passes the `blender` binary's own extension validation (4.2+).

Debian's Blender 3.4 predates extensions (`blender --command extension` is 4.2+): there this skips, and
tests/blender/test_blender_extension.py (`extension validate` + `build` with the bpy wheel, Blender 5.0) stays
the check of the manifest.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import install

pytestmark = pytest.mark.blender_gui

FIRST_WITH_EXTENSIONS = (4, 2)


def blender_version(binary: str) -> tuple[int, int]:
    """(major, minor) from `blender --version`'s "Blender X.Y.Z" line."""
    done = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=60, check=True)
    match = re.search(r"^Blender (\d+)\.(\d+)", done.stdout, re.MULTILINE)
    if match is None:
        raise AssertionError(f"no version in `blender --version`:\n{done.stdout[-2000:]}")
    return int(match.group(1)), int(match.group(2))


def test_built_addon_zip_passes_blenders_extension_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    binary = shutil.which("blender")
    version = blender_version(binary)
    if version < FIRST_WITH_EXTENSIONS:
        pytest.skip(f"Blender {version[0]}.{version[1]} has no `--command extension validate` (4.2+); "
                    "tests/blender/test_blender_extension.py validates the manifest with the bpy wheel")  # fmt: skip
    monkeypatch.setattr(install, "ADDON_ZIP", tmp_path / "dlatrack_addon.zip")  # not the repository's build/
    archive = install.build_addon_zip()
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "user"), HOME=str(tmp_path))  # a throw-away user
    done = subprocess.run(
        [binary, "--factory-startup", "--command", "extension", "validate", str(archive)],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
