"""Starting a local engine without blocking (io/engine_launch.py): poll() returns at once while the engine
comes up, then says ready or failed with the engine's own output (issue 21: the UI froze for 2-14 s)."""

from __future__ import annotations

import os
import stat
import time

import pytest

from blender_addon.io.client import EngineConnectionError
from blender_addon.io.engine_launch import FAILED, READY, STARTING, EngineLaunch

# Stands in for the engine venv's Python: `-m dlatrack_engine.server ... --connection-file F ...`, it waits
# DELAY seconds (like importing torch) and writes F with its pid, or prints a message and exits 3.
FAKE = """#!/bin/sh
while [ "$1" != "--connection-file" ]; do shift; done
sleep {delay}
{action}
"""


def _fake_python(tmp_path, delay: float, fail: bool = False) -> str:
    action = 'echo "no torch here" >&2; exit 3' if fail else 'echo "{\\"pid\\": $$}" > "$2"; sleep 30'
    path = tmp_path / "python"
    path.write_text(FAKE.format(delay=delay, action=action))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _until_done(launch: EngineLaunch, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while launch.poll() == STARTING and time.monotonic() < deadline:
        time.sleep(0.05)
    return launch.state


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script stands in for Python")
def test_poll_never_blocks_and_sees_the_engine_come_up(tmp_path):
    started = time.monotonic()
    launch = EngineLaunch(_fake_python(tmp_path, 1.0), tmp_path / "engine.json")
    assert launch.poll() == STARTING
    assert time.monotonic() - started < 0.5  # the caller (Blender's main thread) got control back at once
    try:
        assert _until_done(launch) == READY and launch.elapsed_s >= 1.0
    finally:
        launch.process.terminate()
        launch.process.wait()


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script stands in for Python")
def test_an_engine_that_exits_fails_with_its_output_and_wait_raises(tmp_path):
    launch = EngineLaunch(_fake_python(tmp_path, 0.1, fail=True), tmp_path / "engine.json")
    assert _until_done(launch) == FAILED
    assert "code 3" in launch.error and "no torch here" in launch.error
    with pytest.raises(EngineConnectionError, match="no torch here"):
        EngineLaunch(_fake_python(tmp_path, 0.0, fail=True), tmp_path / "engine2.json").wait()


@pytest.mark.skipif(os.name == "nt", reason="a POSIX shell script stands in for Python")
def test_cancel_stops_a_start_in_progress(tmp_path):
    launch = EngineLaunch(_fake_python(tmp_path, 5.0), tmp_path / "engine.json")
    launch.cancel()
    assert launch.poll() == FAILED and launch.process.wait(timeout=5) != 0
