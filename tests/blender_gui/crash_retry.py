"""Retry a Blender session once when Blender itself crashed, keeping its `blender.crash.txt` as an artefact.

Why: Debian's Blender 3.4 has segfaulted in about one GUI session in ten (issue 25), inside Blender, with the
add-on's work unfinished. Such a crash says nothing about the add-on, so the session runs once more — but never
on an ordinary failure (an assertion, a traceback inside Blender, a timeout): those fail the test at once. Each
retry is printed, listed in pytest's terminal summary, and its crash report kept under `out/blender_gui/`,
so a crash that passes on the retry still leaves a trace; a second crash in a row fails the test.

A crash is a signal ending Blender (negative return code: SIGSEGV, SIGABRT, ...) or the backtrace file that
Blender's crash handler writes (`blender.crash.txt` in its temporary folder, which the runners make private).
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dlatrack_engine.paths import REPO_ROOT

ARTEFACTS = REPO_ROOT / "out" / "blender_gui" / "crashes"
CRASH_FILE = "blender.crash.txt"
CRASH_NOTES: list[str] = []  # Blender crashes seen this run, for the terminal summary (conftest.py)

T = TypeVar("T")


class BlenderCrash(RuntimeError):
    """Blender died of a crash, not of a failing check; `kept` is the folder holding its crash report."""

    def __init__(self, message: str, kept: Path) -> None:
        super().__init__(f"{message}\n(crash report kept in {kept})")
        self.kept = kept


def crashed(returncode: int | None, temp_dir: Path) -> bool:
    """Whether a Blender that left no result crashed (as opposed to failing or being stopped by us)."""
    return (returncode is not None and returncode < 0) or (temp_dir / CRASH_FILE).is_file()


def exit_code_in(message: str) -> int | None:
    """The exit code in tests/blender_runner.py's "Blender exited with N and no result" message, if there."""
    match = re.search(r"Blender exited with (-?\d+) and no result", message)
    return int(match.group(1)) if match else None


def keep_crash_report(label: str, temp_dir: Path, returncode: int | None, output: str) -> Path:
    """Copy Blender's crash file (if it wrote one) and its output to a new folder under ARTEFACTS."""
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    kept = Path(tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%d-%H%M%S')}-{label}-", dir=ARTEFACTS))
    if (temp_dir / CRASH_FILE).is_file():
        shutil.copy2(temp_dir / CRASH_FILE, kept / CRASH_FILE)
    (kept / "output.txt").write_text(f"return code: {returncode}\n{output}")
    return kept


def note(line: str) -> None:
    """Say `line` in the test's captured output and in pytest's terminal summary."""
    print(f"blender_gui: {line}", flush=True)
    CRASH_NOTES.append(line)


def with_crash_retry(label: str, session: Callable[[int], T]) -> T:
    """`session(attempt)`, run again once (attempt 1) if attempt 0 raised BlenderCrash.

    The session must start from fresh inputs on each attempt (a crashed Blender may have left half a job).
    """
    try:
        return session(0)
    except BlenderCrash as crash:
        note(f"{label}: Blender crashed; crash report kept in {crash.kept}; retrying this Blender session once")
    return session(1)


def as_crash(label: str, error: Exception, temp_dir: Path) -> BlenderCrash | None:
    """A BlenderCrash (report kept) if the tests/blender_runner.py error `error` came from a crash, else None."""
    code = exit_code_in(str(error))
    if not crashed(code, temp_dir):
        return None
    return BlenderCrash(str(error), keep_crash_report(label, temp_dir, code, str(error)))


def run_in_blender_retrying(script: Path, args: dict[str, Any], temp_root: Path, timeout: float = 300) -> dict:
    """tests/blender_runner.py's `run_in_blender`, run again once if Blender crashed.

    Each attempt gets its own TMPDIR under `temp_root`, where Blender's crash handler writes its report.
    """
    import blender_runner

    def attempt(n: int) -> dict:
        temp = temp_root / f"{script.stem}-tmp{n}"
        temp.mkdir(parents=True)
        try:
            return blender_runner.run_in_blender(script, args, timeout=timeout, env={"TMPDIR": str(temp)})
        except blender_runner.BlenderScriptError as error:
            crash = as_crash(script.stem, error, temp)
            if crash is None:
                raise
            raise crash from error

    return with_crash_retry(script.stem, attempt)
