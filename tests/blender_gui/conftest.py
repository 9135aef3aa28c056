"""Fixtures of the GUI tests: a virtual X display (Xvfb) for a real `blender` binary, or a clean skip.

The bpy wheel runs without a window manager, so its timers and modal operators never run; these tests start
the interactive Blender (Debian's `blender` package: 3.4) on Xvfb, with Mesa's software OpenGL.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE.parents[1], HERE.parent, HERE.parent / "addon", HERE.parent / "blender", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

TOOLS = ("blender", "Xvfb", "xdotool")


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    missing = missing_tools()
    if not missing:
        return
    reason = f"GUI test needs {', '.join(missing)} on PATH (apt-get install blender python3-numpy xvfb xdotool)"
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if "blender_gui" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def in_blender_binary(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make tests/blender_runner.py start the `blender` binary (background) instead of the bpy wheel."""
    import blender_runner

    prefix = [shutil.which("blender"), "-b", "--factory-startup", "--python-exit-code", "1", "--python"]
    monkeypatch.setattr(blender_runner, "blender_command", lambda script, args: [*prefix, str(script), "--", *args])


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    """A private Xvfb server; yields its DISPLAY (":N"). Xvfb picks a free display number itself."""
    read_end, write_end = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_end), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=(write_end,), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        number = reader.readline().strip()
    if not number.isdigit():
        server.kill()
        raise RuntimeError(f"Xvfb did not report a display number: {server.stderr.read().decode()[-2000:]}")
    try:
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """List every Blender crash of this run (retried or not), so a crash that a retry hid is still seen."""
    from crash_retry import CRASH_NOTES

    if CRASH_NOTES:
        terminalreporter.section("Blender crashes (tests/blender_gui)")
        for line in CRASH_NOTES:
            terminalreporter.write_line(line)
