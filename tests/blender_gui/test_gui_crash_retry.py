"""A Blender that segfaults is run once more, its crash report kept; an ordinary failure is not retried.

Real crashes of the real `blender` binary (bpy_scripts/crash_once.py reads address 0), in the background
runner and in the GUI runner, so the crash handler's `blender.crash.txt` and the exit signal are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import blender_runner
import crash_retry
import pytest
from crash_retry import CRASH_FILE, BlenderCrash, run_in_blender_retrying, with_crash_retry
from gui_runner import SCRIPTS, run_gui_blender

pytestmark = pytest.mark.blender_gui

CRASH_ONCE = SCRIPTS / "crash_once.py"


@pytest.fixture
def artefacts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Deliberate crashes keep their reports here and stay out of the run's crash summary."""
    monkeypatch.setattr(crash_retry, "ARTEFACTS", tmp_path / "artefacts")
    monkeypatch.setattr(crash_retry, "CRASH_NOTES", [])
    return tmp_path / "artefacts"


def assert_one_crash_kept(artefacts: Path, label: str) -> None:
    (kept,) = artefacts.iterdir()
    assert label in kept.name
    assert "backtrace" in (kept / CRASH_FILE).read_text().lower()
    assert "return code: -11" in (kept / "output.txt").read_text()
    (line,) = crash_retry.CRASH_NOTES
    assert "retrying this Blender session once" in line and str(kept) in line


def test_background_blender_crash_is_retried_once(in_blender_binary: None, tmp_path: Path, artefacts: Path) -> None:
    runs = tmp_path / "runs.txt"
    assert run_in_blender_retrying(CRASH_ONCE, {"runs": str(runs)}, tmp_path, timeout=60) == {"runs": 2}
    assert_one_crash_kept(artefacts, "crash_once")


def test_gui_blender_crash_is_retried_once(x_display: str, tmp_path: Path, artefacts: Path) -> None:
    runs = tmp_path / "runs.txt"
    result = with_crash_retry("crash_once", lambda _: run_gui_blender(CRASH_ONCE, {"runs": str(runs)}, x_display))
    assert result["runs"] == 2 and result["returncode"] == 0
    assert_one_crash_kept(artefacts, "crash_once")


def test_second_crash_in_a_row_fails(in_blender_binary: None, tmp_path: Path, artefacts: Path) -> None:
    runs = tmp_path / "runs.txt"
    with pytest.raises(BlenderCrash, match="crash report kept in"):
        run_in_blender_retrying(CRASH_ONCE, {"runs": str(runs), "crashes": 2}, tmp_path, timeout=60)
    assert runs.read_text() == "run\nrun\n"
    assert len(list(artefacts.iterdir())) == 2


def test_ordinary_failure_is_not_retried(in_blender_binary: None, tmp_path: Path, artefacts: Path) -> None:
    runs = tmp_path / "runs.txt"
    with pytest.raises(blender_runner.BlenderScriptError, match="an ordinary failure inside Blender"):
        run_in_blender_retrying(CRASH_ONCE, {"runs": str(runs), "fail": True}, tmp_path, timeout=60)
    assert runs.read_text() == "run\n"
    assert not artefacts.exists() and not crash_retry.CRASH_NOTES
