"""Starting a local engine process without waiting for it: a small state machine (starting -> ready | failed)
that Blender's UI pumps from a timer and batch mode or tests run to the end with `wait()`.

The engine takes 2-14 s to import torch and bind its socket; waiting for it on Blender's main thread froze
the whole UI for that long (issue 21).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .client import EngineConnectionError

STARTING, READY, FAILED = "starting", "ready", "failed"


class EngineLaunch:
    """`python -m dlatrack_engine.server` (= `dlatrack serve`) started now; `poll()` never blocks.

    The engine watches this process (`--exit-with-parent`) and stops when it ends: closing or crashing Blender
    leaves no orphan engine. Its log goes to `<connection_file>.log` (a pipe nobody drains would block it)."""

    def __init__(self, python: str, connection_file: Path, extra_args: Sequence[str] = (),
                 wait_s: float = 120.0) -> None:
        self.connection_file = Path(connection_file)
        self.connection_file.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = self.connection_file.with_name(self.connection_file.name + ".log")
        self.wait_s = wait_s
        self.error = ""
        self.state = STARTING
        command = [python, "-m", "dlatrack_engine.server", "-v", "--connection-file", str(self.connection_file),
                   *extra_args]
        if os.name != "nt":  # the engine stops when this process (Blender) ends, even after a crash
            command += ["--exit-with-parent", str(os.getpid())]
        self.started = time.monotonic()
        with open(self.log_path, "ab") as log_file:
            self.process = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    def _fail(self, message: str) -> str:
        self.state, self.error = FAILED, message
        return self.state

    def poll(self) -> str:
        """STARTING, READY (the engine wrote its connection file) or FAILED (see `error`)."""
        if self.state != STARTING:
            return self.state
        if self.process.poll() is not None:
            tail = self.log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
            return self._fail(f"engine exited with code {self.process.returncode}: {tail}")
        try:
            if json.loads(self.connection_file.read_text(encoding="utf-8")).get("pid") == self.process.pid:
                self.state = READY
                return self.state
        except (OSError, ValueError):
            pass
        if self.elapsed_s > self.wait_s:
            self.process.terminate()
            return self._fail(f"engine did not write {self.connection_file} within {self.wait_s:.0f} s "
                              f"(log: {self.log_path})")
        return self.state

    def cancel(self) -> None:
        if self.state == STARTING:
            self.process.terminate()
            self._fail("start cancelled")

    def wait(self, poll_s: float = 0.1) -> subprocess.Popen:
        """Block until the engine is ready (batch mode, tests); EngineConnectionError with the log's tail when
        it exits or does not come up in time."""
        while self.poll() == STARTING:
            time.sleep(poll_s)
        if self.state == FAILED:
            raise EngineConnectionError(self.error)
        return self.process
