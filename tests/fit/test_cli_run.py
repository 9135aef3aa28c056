"""`dlatrack track` and `dlatrack adapt` run end to end (issue 26): the command line's options reach the job,
the closing lines say what was done, and the exit code is 0; Ctrl-C (a real SIGINT) stops at a frame boundary
with exit code 130 and a resumable folder; stderr shows one progress bar per stage. The folders are seeded with
the replayed landmarks (a job cancelled after its landmarks stage), so the commands resume there without a
landmark detector; jobs of a few iterations (fit_fixtures.MICRO)."""

from __future__ import annotations

import argparse
import functools
import io
import re
import signal
import sys
import threading

import pytest
from fit_fixtures import FRAMES, MICRO, ReplayDetector

from dlatrack_engine.fit import adapt_cli, cli
from dlatrack_engine.fit.pipeline import ProgressEvent, Runtime, adapt_video_lighting, track_video
from dlatrack_engine.wire.jobfolder import JobFolder

pytestmark = pytest.mark.usefixtures("micro_schedule")  # conftest.py: MICRO with the job's K


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    subparsers = parser.add_subparsers()
    cli.register(subparsers)
    adapt_cli.register(subparsers)
    return parser.parse_args(argv)


def _seed_landmarks(function, root, avatar, args: argparse.Namespace, marks) -> None:
    """Run `function` with the command's options until its landmarks are stored."""
    cancel = threading.Event()

    def stop_after_landmarks(event: ProgressEvent) -> None:
        if event.stage != "landmarks":
            cancel.set()

    summary = function(root, avatar, args.out, cli.track_options(args), stop_after_landmarks, cancel,
                       Runtime(landmark_detector=ReplayDetector(marks)))
    assert summary.cancelled and summary.stages_done == ["landmarks"]


def test_track_resumes_the_job_and_says_what_it_did(tmp_path, avatar, clip_dir, capsys):
    root, marks = clip_dir
    package, out = avatar.to_package(tmp_path / "avatar"), tmp_path / "job"
    args = _parse(["track", str(root), "--avatar", str(package), "--out", str(out), "--lighting", "none",
                   "--landmarks-only", "--no-textures", "--no-overlays", "--start", "1"])
    _seed_landmarks(track_video, root, avatar, args, marks)
    capsys.readouterr()
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    summary = JobFolder(out).read_manifest()
    assert summary.state == "completed" and summary.options == cli.track_options(args).to_dict()
    assert f"preview: {out / 'preview.mp4'}" in printed
    seconds = summary.metrics["seconds"]
    assert set(seconds) == {"init", "track", "preview"}
    line = printed.strip().splitlines()[-1]
    assert line.startswith(f"tracked {FRAMES - 1} frames ({FRAMES - 1} computed, 0 resumed) -> {out}; init ")
    assert ", track " in line and ", preview " in line and line.endswith("s")
    args.no_preview = True  # asked for no preview: no preview line, even though the file is there
    assert args.func(args) == 0
    printed = capsys.readouterr().out
    assert "preview:" not in printed and f"tracked {FRAMES - 1} frames (0 computed, {FRAMES - 1} resumed)" in printed


def test_adapt_resumes_the_job_and_says_how_to_reuse_it(tmp_path, avatar, clip_dir, capsys):
    root, marks = clip_dir
    package, out = avatar.to_package(tmp_path / "avatar"), tmp_path / "job"
    args = _parse(["adapt", str(root), "--avatar", str(package), "--out", str(out), "-K", "2"])
    _seed_landmarks(adapt_video_lighting, root, avatar, args, marks)
    capsys.readouterr()
    assert args.func(args) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"adapted the lighting on 2 key frames -> {out}/lighting; init ")
    assert line.endswith(f"s; reuse it with `dlatrack track TAKE --lighting-from {out}`") and ", adapt " in line
    assert JobFolder(out).read_manifest().stages_done == ["landmarks", "init", "adapt"]


class Terminal(io.StringIO):
    """stderr as the user sees it; presses Ctrl-C (a real SIGINT to this process) when the bar of stage
    `interrupt_at` first shows."""

    def __init__(self, interrupt_at: str | None = None) -> None:
        super().__init__()
        self.interrupt_at, self.interrupted = interrupt_at, False

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.interrupt_at and not self.interrupted and f"{self.interrupt_at}:" in text:
            self.interrupted = True
            signal.raise_signal(signal.SIGINT)
        return written

    def bars(self) -> list[tuple[str, str]]:
        """(stage, what its bar showed) for every redraw, in order."""
        lines = re.split(r"[\r\n]+", self.getvalue())
        return [(m.group(1), line.rstrip()) for line in lines if (m := re.match(r"\s*(\w+): ", line))]


def test_ctrl_c_keeps_what_was_written_and_exits_130(tmp_path, avatar, clip_dir, capsys, monkeypatch):
    root, marks = clip_dir
    package, out = avatar.to_package(tmp_path / "avatar"), tmp_path / "job"
    args = _parse(["track", str(root), "--avatar", str(package), "--out", str(out), "--lighting", "none",
                   "--landmarks-only", "--no-textures", "--no-overlays", "--no-preview", "--start", "1"])
    _seed_landmarks(track_video, root, avatar, args, marks)
    capsys.readouterr()
    handler = signal.getsignal(signal.SIGINT)
    terminal = Terminal(interrupt_at="track")  # Ctrl-C once the first batch of 4 frames is written
    monkeypatch.setattr(sys, "stderr", terminal)
    assert args.func(args) == 130
    assert terminal.interrupted and signal.getsignal(signal.SIGINT) is handler  # the handler is given back
    written = JobFolder(out).frames_done()
    assert 0 < len(written) < FRAMES - 1
    assert capsys.readouterr().out == f"interrupted: {len(written)} frames written to {out}; rerun to resume\n"
    assert JobFolder(out).read_manifest().state != "completed"
    monkeypatch.setattr(sys, "stderr", Terminal())
    assert args.func(args) == 0
    rest = FRAMES - 1 - len(written)
    assert f"tracked {FRAMES - 1} frames ({rest} computed, {len(written)} resumed)" in capsys.readouterr().out


def test_adapt_ctrl_c_says_the_folder_is_resumable(tmp_path, avatar, clip_dir, capsys, monkeypatch):
    root, marks = clip_dir
    package, out = avatar.to_package(tmp_path / "avatar"), tmp_path / "job"
    args = _parse(["adapt", str(root), "--avatar", str(package), "--out", str(out), "-K", "2"])
    _seed_landmarks(adapt_video_lighting, root, avatar, args, marks)
    capsys.readouterr()
    monkeypatch.setattr(sys, "stderr", Terminal(interrupt_at="init"))
    assert args.func(args) == 130
    assert capsys.readouterr().out == f"interrupted: {out} is resumable; rerun the same command\n"
    assert "init" not in JobFolder(out).read_manifest().stages_done


def test_progress_bars_one_per_stage_on_stderr(tmp_path, avatar, clip_dir, capsys, monkeypatch):
    root, marks = clip_dir
    package, out = avatar.to_package(tmp_path / "avatar"), tmp_path / "job"
    args = _parse(["track", str(root), "--avatar", str(package), "--out", str(out), "-K", "2", "--no-textures",
                   "--no-overlays", "--start", "1"])
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    replayed = functools.partial(track_video, runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    assert cli.run_with_progress(replayed, args).frames == FRAMES - 1
    bars = terminal.bars()
    order = [stage for i, (stage, _) in enumerate(bars) if i == 0 or bars[i - 1][0] != stage]
    # Each bar closed before the next opens; step 3's "write" events move the "track" bar.
    assert order == ["landmarks", "init", "adapt", "track", "preview"]
    last = {stage: text for stage, text in bars}
    done = {stage: re.search(r"\| (\d+)/(\d+) \[", text).groups() for stage, text in last.items()}
    steps, frames = str(MICRO.step1.iterations), str(FRAMES - 1)
    assert done == {"landmarks": (frames, frames), "init": (steps, steps), "adapt": done["adapt"],
                    "track": (frames, frames), "preview": (frames, frames)} and done["adapt"][0] == done["adapt"][1]
    assert re.search(r"(it/s|s/it), loss [0-9.e+-]+\]$", last["init"])
    # One redraw per event (the loss is set without a redraw of its own), plus the bar's first and last.
    assert sum(stage == "init" for stage, _ in bars) == MICRO.step1.iterations + 2
    assert re.search(r"(it/s|s/it), loss [0-9.e+-]+ adapt .+\]$", last["adapt"])
    assert re.search(r"(frame/s|s/frame), loss [0-9.e+-]+ iteration \d+\]$", last["track"])
    assert all(re.search(r"(frame/s|s/frame)\]$", last[stage]) for stage in ("landmarks", "preview"))
    shown = [int(re.search(r"\| (\d+)/", text).group(1)) for stage, text in bars if stage == "track"]
    assert sorted(set(shown)) == [0, 4, 5] and shown == sorted(shown)  # frames written, batches of 4
