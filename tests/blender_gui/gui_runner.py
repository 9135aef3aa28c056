"""Run a scripted session in an interactive Blender (on an X display) and return what the script measured.

The script (`bpy_scripts/*.py`) defines `steps(args)`, a generator: `bpy_scripts/gui_bootstrap.py` advances it
from a `bpy.app.timers` callback, so between two steps Blender's own event loop runs (window-manager timers,
modal operators, redraws) exactly as when a person uses it. A `yield seconds` hands the main loop back for
that long; the generator's return value comes back here as a dict.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from crash_retry import CRASH_FILE, BlenderCrash, crashed, keep_crash_report, note

from dlatrack_engine.paths import REPO_ROOT

SCRIPTS = Path(__file__).resolve().parent / "bpy_scripts"
WINDOW = (1280, 800)


class GuiScriptError(RuntimeError):
    """The scripted session raised, or Blender ended without a result; the message holds its output."""


def check_crash(label: str, temp_dir: Path, returncode: int, output: str, has_result: bool) -> None:
    """Raise BlenderCrash (report kept) if Blender crashed before its result; only note a crash after it.

    Blender's crash handler writes its backtrace to `blender.crash.txt` in TMPDIR (`temp_dir` here).
    """
    if not crashed(returncode, temp_dir):
        return
    crash = temp_dir / CRASH_FILE
    output += f"\n--- {crash.name} ---\n{crash.read_text(errors='replace')[-4000:]}" if crash.is_file() else ""
    kept = keep_crash_report(label, temp_dir, returncode, output)
    if not has_result:
        raise BlenderCrash(f"{label}: Blender crashed (exit {returncode}) with no result:\n{output}", kept)
    note(f"{label}: Blender crashed (exit {returncode}) after writing its result, which is used; report in {kept}")


def run_gui_blender(script: str | Path, args: dict[str, Any], display: str, timeout: float = 120) -> dict[str, Any]:
    """Run `script`'s `steps(args)` in `blender` (GUI) on `display`; returns its result and Blender's stderr.

    Raises BlenderCrash when Blender crashed before its result (tests retry that with `with_crash_retry`),
    GuiScriptError when the script failed or Blender ended otherwise.
    """
    blender = shutil.which("blender")
    if blender is None:
        raise FileNotFoundError("no `blender` binary on PATH")
    with tempfile.TemporaryDirectory(prefix="dlatrack-gui-") as tmp:
        args_path, result_path = Path(tmp) / "args.json", Path(tmp) / "result.json"
        args_path.write_text(json.dumps(args))
        command = [
            blender, "--factory-startup", "--window-geometry", "0", "0", str(WINDOW[0]), str(WINDOW[1]),
            "--python", str(SCRIPTS / "gui_bootstrap.py"),
            "--", str(Path(script).resolve()), str(args_path), str(result_path), str(REPO_ROOT),
        ]  # fmt: skip
        # Mesa's software OpenGL with one thread: its default of one per core makes every redraw wait for all of
        # them, seconds apiece when the cores are busy (measured: 5 s vs 0.2 s median on 2 loaded cores).
        env = dict(os.environ, DISPLAY=display, LIBGL_ALWAYS_SOFTWARE="1", LP_NUM_THREADS="1")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        # Blender's user config goes to a temporary home: no user add-ons or preferences leak in or out.
        env["BLENDER_USER_CONFIG"] = env["BLENDER_USER_SCRIPTS"] = str(Path(tmp) / "user")
        env["TMPDIR"] = tmp  # Blender's temporary files (quit.blend, the engine's connection file) stay here
        # The engine the add-on starts keeps its job registry here, not in the repository's cache: an engine
        # killed by a test must not leave a job that the next engine resumes (and queues new jobs behind).
        env["DLATRACK_CACHE"] = str(Path(tmp) / "cache")
        # One torch thread for that engine: it shares 2 cores with Blender (and, on a developer's machine, other
        # work), and oversubscribed OpenMP threads spin (`dlatrack serve --threads`): seconds per tiny step.
        env["OMP_NUM_THREADS"] = "1"
        # Its own session (process group): an engine the add-on started is stopped with it even when Blender
        # crashes or hangs, instead of living on as an orphan.
        blender_process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                           env=env, start_new_session=True)  # fmt: skip
        try:
            stdout, stderr = blender_process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            blender_process.kill()
            stdout, stderr = blender_process.communicate()
            output = stdout[-4000:] + stderr[-4000:]
            raise GuiScriptError(f"{Path(script).name}: Blender did not quit within {timeout} s\n{output}") from exc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(blender_process.pid, signal.SIGKILL)
        done = subprocess.CompletedProcess(command, blender_process.returncode, stdout, stderr)
        output = (done.stdout or "")[-6000:] + "\n--- stderr ---\n" + (done.stderr or "")[-6000:]
        check_crash(Path(script).stem, Path(tmp), done.returncode, output, result_path.is_file())
        if not result_path.is_file():
            raise GuiScriptError(f"{Path(script).name}: Blender exited with {done.returncode} and no result:\n{output}")
        payload = json.loads(result_path.read_text())
        if not payload["ok"]:
            raise GuiScriptError(f"{Path(script).name} failed inside Blender:\n{payload['traceback']}\n{output}")
        return {**payload["result"], "stderr": done.stderr or "", "returncode": done.returncode}
