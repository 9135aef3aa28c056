"""Track Video in an interactive Blender (Xvfb) against a real engine: progress while the UI stays live,
a completed job, ESC, Cancel, and an engine killed mid-job (bpy_scripts/drive_track.py drives it)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from crash_retry import with_crash_retry
from gui_data import KEY_FRAMES, make_dome_clip
from gui_runner import SCRIPTS, WINDOW, run_gui_blender

from dlatrack_engine.wire.png import decode_png

pytestmark = [pytest.mark.blender_gui, pytest.mark.slow]
# (first frame, count, preset). ESC and Cancel interrupt the full method (steps 1-3) while it computes; the
# completed and the killed job use the Preview preset (step 1 alone), which runs in seconds on a CPU; the
# completed one has 40 frames so that it lasts long enough for the panel to be sampled mid-job (6 frames
# finished in ~1.5 s on a quiet machine, between two samples). ESC and Cancel get 100 frames, five step-3 batches
# of 20: steps 1-2 of this small job take seconds, Blender's main loop can stall for 1-3 s on a loaded machine,
# so the panel may first see the job at the end of step 2 — seen once in 10 runs with 12 frames (one batch):
# 'adapt 160/160', then all 12 frames written before the ESC reached the engine (4.5 s later). Five batches
# leave work to interrupt; a job that is stopped early costs no more.
REQUESTS = {"complete": (0, 40, "PREVIEW"), "escape": (0, 100, "FAST"), "cancel": (3, 100, "FAST"),
            "kill": (0, 200, "PREVIEW")}  # fmt: skip


@pytest.fixture(scope="module")
def session(x_display: str, tmp_path_factory: pytest.TempPathFactory) -> dict:
    def attempt(_: int) -> dict:
        # Fresh data on every attempt: a crashed session leaves its job folders half done, which would resume.
        root = tmp_path_factory.mktemp("gui_track")
        data = make_dome_clip(root, list(REQUESTS.values()))
        args = {**data, **{k: list(v) for k, v in REQUESTS.items()}, "engine_python": sys.executable,
                "key_frames": KEY_FRAMES, "screenshot": str(root / "window.png")}  # fmt: skip
        return {**run_gui_blender(SCRIPTS / "drive_track.py", args, x_display, timeout=300), "root": str(root)}

    return with_crash_retry("drive_track", attempt)


def test_addon_enables_and_panel_draws_without_errors(session: dict) -> None:
    assert session["import"] == ["FINISHED"] and session["connect"] == ["FINISHED"]
    assert session["engine"]["device"] == "cpu"
    # Start a local engine: the operator returns at once, the sidebar draws while the engine comes up.
    assert session["connect_return_s"] < 1.0 < session["connect_s"], session["connect_return_s"]
    assert session["panel_draws_while_starting"] > 0
    assert "Traceback" not in session["stderr"], session["stderr"][-3000:]
    # The sidebar tab was open all along: its draw() ran while the jobs ran, and after the engine died.
    assert session["panel_draws_while_tracking"] > 10 and session["panel_draws_after_kill"] > 0
    shot = decode_png(Path(session["screenshot"]).read_bytes())
    assert shot.shape[:2] == (WINDOW[1], WINDOW[0])
    assert len({tuple(p) for p in shot[::16, ::16, :3].reshape(-1, 3)}) > 20, "the window drew no UI"


def test_completed_job_streams_progress_and_writes_the_scene(session: dict) -> None:
    done = session["complete"]
    start, count, _ = REQUESTS["complete"]
    assert done["engine_state"] == "completed" and done["final_status"] == "done"
    assert not done["operator_running"]
    assert done["frame_keys"] == [f"frame_{i + 1:04d}" for i in range(start, start + count)]
    assert done["frame_files"] == count and done["frames_written"] == count
    assert done["scene_range"] == [start + 1, start + count]
    # Show Comparison: the job's preview.mp4 as a movie strip over the same scene frames.
    assert session["comparison"] == ["FINISHED"]
    assert session["comparison_strips"] == [["MOVIE", start + 1, count]]
    assert done["images"]["Relit texture"] == ["SEQUENCE", "relit"]
    assert done["images"]["Fully-lit texture"] == ["SEQUENCE", "full"]
    # The panel followed the engine: its stage and count, a progress between 0 and 1, then "done".
    assert any(status.startswith("init ") and "/300" in status for status in done["statuses"]), done["statuses"]
    assert any(0.0 < p < 1.0 for p in done["progress"]) and done["progress"][-1] == 1.0, done["progress"]
    # The modal operator ran on its timer throughout, and none of its ticks waited for the engine: the socket
    # is read on a thread and requests go out on threads (blocked = wall - on CPU - waiting for a CPU, from
    # schedstat, so a starved machine does not count). Blender's own redraws (software OpenGL) are not timed.
    assert done["pumps"] >= 3, done["pumps"]
    assert done["max_pump_blocked_s"] < 0.1, done


@pytest.mark.parametrize("how", ["escape", "cancel"])
def test_escape_and_cancel_stop_the_engine_job(session: dict, how: str) -> None:
    stopped = session[how]
    assert stopped["engine_state"] == "cancelled", stopped
    assert stopped["final_status"] == "stopped" and not stopped["operator_running"]
    # The job stopped within seconds, before its end: at most the batches finished before the ESC got there
    # are on disk (none, unless the machine is so loaded that the panel saw the job late).
    assert stopped["end_after_s"] < 30 and stopped["frame_files"] < REQUESTS[how][1], stopped
    assert stopped["max_pump_blocked_s"] < 0.1, stopped


def test_engine_killed_mid_job_ends_the_operator_and_keeps_frames(session: dict) -> None:
    killed = session["kill"]
    assert not killed["operator_running"] and killed["final_status"] == "stopped"
    assert killed["end_after_s"] < 30
    # Frames written before the engine died stay in the scene, and so does every frame file it finished.
    assert 0 < killed["written_at_kill"] <= killed["frames_written"] == killed["frame_files"] < REQUESTS["kill"][1]
    assert set(killed["frame_keys"]) >= {f"frame_{i + 1:04d}" for i in range(killed["frame_files"])}
    assert not killed["connected_after"], "the panel must offer Start / Connect again"
    assert killed["max_pump_blocked_s"] < 0.1, killed
