"""`dlatrack track` and `dlatrack adapt` run end to end (issue 26): the command line's options reach the job,
the closing lines say what was done, and the exit code is 0. The folders are seeded with the replayed landmarks
(a job cancelled after its landmarks stage), so the commands resume there without a landmark detector; jobs of
a few iterations (fit_fixtures.MICRO)."""

from __future__ import annotations

import argparse
import copy
import threading

import pytest
from fit_fixtures import FRAMES, MICRO, ReplayDetector

from dlatrack_engine.fit import adapt_cli, cli
from dlatrack_engine.fit.pipeline import ProgressEvent, Runtime, TrackOptions, adapt_video_lighting, track_video
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.wire.jobfolder import JobFolder


@pytest.fixture(autouse=True)
def micro_schedule(monkeypatch):
    def schedule(self) -> Schedule:
        s = copy.deepcopy(MICRO)
        s.step2.key_frames = self.key_frames
        return s

    monkeypatch.setattr(TrackOptions, "schedule", schedule)


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
