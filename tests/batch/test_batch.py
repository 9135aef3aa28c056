"""`dlatrack batch` on a local Ray (2 CPUs) with tiny synthetic clips: job folders, a worker killed mid-clip
and resumed by Ray's retry, a failing clip reported while the others complete, a rerun that skips."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from batch_fixtures import KILLED_MARK, kill_once_track
from fit_fixtures import FRAMES, gt_params, make_avatar, write_clip

from dlatrack_engine.batch import cli
from dlatrack_engine.batch.table import read_batch_json
from dlatrack_engine.wire.jobfolder import JobFolder

ray = pytest.importorskip("ray")
TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """The tiny avatar as a package, two copies of one tiny clip (one marked for a kill) and a broken video."""
    root = tmp_path_factory.mktemp("batch_inputs")
    avatar = make_avatar()
    package = avatar.to_package(root / "avatar")
    clips = root / "clips"
    marks = write_clip(clips / "take", avatar, gt_params(FRAMES))
    np.save(clips / "take" / "marks.npy", marks)
    shutil.copytree(clips / "take", clips / "take-kill")
    (root / "broken.mp4").write_bytes(b"not a video")
    return {"avatar": package, "clips": clips, "broken": root / "broken.mp4"}


@pytest.fixture
def ray_workers_see_tests(monkeypatch):
    """Workers import the runners by module name; and no Ray may outlive the test."""
    paths = [TESTS / "batch", TESTS / "fit", TESTS, TESTS.parent, os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(str(p) for p in paths if str(p)))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    yield
    ray.shutdown()


def _args(*clips: Path | str, out: Path, avatar: Path, retries: int = 1) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    argv = ["batch", *map(str, clips), "--avatar", str(avatar), "--out", str(out), "-K", "3", "--no-preview",
            "--retries", str(retries), "--local-cpus", "2"]
    return parser.parse_args(argv)


def test_batch_kill_resume_failure_and_rerun(inputs, tmp_path, ray_workers_see_tests, capsys):
    out = tmp_path / "batch"
    args = _args(inputs["clips"], inputs["broken"], out=out, avatar=inputs["avatar"])
    assert cli.run(args, runner=kill_once_track) == 1  # one clip failed
    assert not ray.is_initialized()  # the batch shut its local Ray down

    rows = {r.job: r for r in read_batch_json(out)}
    assert set(rows) == {"take", "take-kill", "broken"}
    for name in ("take", "take-kill"):
        folder = JobFolder(out / name)
        assert rows[name].state == "completed", rows[name]
        assert folder.frames_done() == list(range(FRAMES)) and rows[name].frames == FRAMES
        assert rows[name].psnr is not None and rows[name].psnr > 20, rows[name]
    # The killed worker had written the first step-3 batch: the retry resumed it instead of starting over.
    assert (out / "take-kill" / KILLED_MARK).exists()
    assert 0 < rows["take-kill"].computed < FRAMES and rows["take"].computed == FRAMES
    assert rows["broken"].state == "failed" and "broken.mp4" in rows["broken"].error, rows["broken"]
    printed = capsys.readouterr().out
    assert "take-kill" in printed and "failed" in printed and "broken.mp4" in printed

    # A rerun skips both finished jobs without starting Ray, and keeps their numbers.
    assert cli.run(_args(inputs["clips"], out=out, avatar=inputs["avatar"]), runner=kill_once_track) == 0
    again = {r.job: r for r in read_batch_json(out)}
    assert {r.state for r in again.values()} == {"skipped"}
    assert again["take"].psnr == pytest.approx(rows["take"].psnr)
    assert json.loads((out / "batch.json").read_text())["counts"] == {"skipped": 2}
