"""The add-on as a Blender 4.2+ extension: the manifest validates, the zip installs, enables and disables."""

from __future__ import annotations

from pathlib import Path

import pytest
from blender_data import SCRIPTS
from blender_runner import run_in_blender

from dlatrack_engine.paths import REPO_ROOT

pytestmark = pytest.mark.blender


def test_extension_zip_installs_and_registers(tmp_path: Path) -> None:
    user = tmp_path / "user"  # a throw-away Blender user folder: never the developer's own
    result = run_in_blender(
        SCRIPTS / "check_extension.py",
        {"addon": str(REPO_ROOT / "blender_addon"), "work": str(tmp_path)},
        timeout=180,
        env={"BLENDER_USER_RESOURCES": str(user), "HOME": str(tmp_path)},
    )
    assert result["checks"] == {"validate": True, "build": True}
    assert result["zip"] == "dlatrack-0.1.0.zip"
    assert result["enabled"] and result["registered"] and result["prefs"] == 300
    assert result["unregistered"]
