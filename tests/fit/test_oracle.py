"""The appearance ceiling (metrics/oracle.py) on a tracked job of the tiny synthetic clip: above the tracked
result where tracking starts off the truth, computed once and read back while its inputs are unchanged,
recomputed when they change, and absent without ground truth or when skipped."""

from __future__ import annotations

import argparse
import json
import shutil

import cv2
import numpy as np
import pytest
import torch
from fit_fixtures import HEIGHT, TINY, WIDTH, ReplayDetector, gt_params, intrinsics, make_avatar, truth_lighting

from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, track_video
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.metrics import cli
from dlatrack_engine.metrics.evaluate import evaluate, score_renders
from dlatrack_engine.metrics.oracle import ORACLE_FILE, _read_cache, job_oracle, job_schedule, oracle_key
from dlatrack_engine.report.job import load_job
from dlatrack_engine.wire.jobfolder import JobFolder


@pytest.fixture(scope="module")
def tracked_job(tmp_path_factory, avatar, clip_dir):
    """A job folder tracked with the tiny schedule from landmarks 3 px off (step 1 starts off the truth), on
    a copy of the fixtures' clip with face masks (the true render's coverage, as the sample clips ship), so
    every method is scored on the face's own pixels."""
    source, marks = clip_dir
    marks = marks + np.random.default_rng(5).normal(0.0, 3.0, marks.shape).astype(np.float32)
    base = tmp_path_factory.mktemp("oracle")
    root = base / "clip"
    shutil.copytree(source, root)
    (root / "masks").mkdir()
    truth = gt_params(len(marks))
    with torch.no_grad():
        coverage = FaceScene(avatar, intrinsics(), WIDTH, HEIGHT).render(truth, None).mask[..., 0].numpy()
    for i, m in enumerate(coverage):
        cv2.imwrite(str(root / "masks" / f"{i:06d}.png"), ((m > 0.5) * 255).astype(np.uint8))
    job = base / "job"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrackOptions, "schedule", lambda self: TINY)
        track_video(root, avatar, job, TrackOptions(key_frames=3, write_textures=False, write_overlays=False,
                                                   write_preview=False),
                    runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    return job


@pytest.fixture(scope="module")
def first_eval(tracked_job, avatar):
    return evaluate(tracked_job, avatar, csim=False, oracle=True)


def test_the_ceiling_is_above_the_tracked_result(first_eval, tracked_job):
    evaluation = first_eval
    means, oracle = evaluation.means, evaluation.oracle
    assert oracle is not None and not oracle.cached
    # Measured 2026-12-07: tracked 25.7 dB / 0.953 (vertex 3.5 mm), ceiling 30.7 dB / 0.980.
    assert means["vertex_mm"] > 1.0, means  # tracking really is off the truth here
    assert means["oracle_psnr"] >= means["psnr"] + 2.0, means
    assert means["oracle_ssim"] >= means["ssim"], means
    assert means["psnr_loss"] == pytest.approx(means["oracle_psnr"] - means["psnr"])
    assert means["ssim_loss"] == pytest.approx(means["oracle_ssim"] - means["ssim"])
    per_frame = evaluation.per_frame["oracle_psnr"]
    assert per_frame.shape == (len(evaluation.frames),) and np.isfinite(per_frame).all()
    assert oracle.key_frames and set(oracle.key_frames) <= set(evaluation.frames)
    assert JobFolder(tracked_job).read_manifest().metrics["eval"]["oracle_psnr"] == means["oracle_psnr"]


def test_the_ceiling_is_the_avatar_at_the_truth(first_eval, tracked_job, avatar):
    """Scoring the truth's own render (same frames, masks, metrics) with the clip's lighting gives at least
    the ceiling's PSNR: the ceiling is the truth state, not the tracked one, and its lighting comes close to
    the clip's (Algorithm 1 at the truth)."""
    job = load_job(tracked_job, avatar)
    truth = gt_params(len(job.indices))
    perfect, _ = score_renders(job, truth, truth_lighting(avatar))
    tracked, _ = score_renders(job, job.params, job.lighting)
    ceiling = first_eval.means["oracle_psnr"]
    # measured: the clip's own lighting at the truth 49.9 dB (8-bit PNGs), ceiling 30.7 (the tiny schedule's
    # 8 + 8 iterations of step 2), tracked 25.7
    assert float(np.mean(perfect["psnr"])) > ceiling > float(np.mean(tracked["psnr"]))


def test_the_ceiling_is_cached_until_an_input_changes(first_eval, tracked_job, avatar, tmp_path, monkeypatch):
    def no_recompute(*args):
        raise AssertionError("the ceiling was recomputed although its inputs did not change")

    monkeypatch.setattr("dlatrack_engine.metrics.oracle.ceiling_state", no_recompute)
    again = evaluate(tracked_job, avatar, csim=False, oracle=True)
    assert again.oracle is not None and again.oracle.cached
    assert again.oracle.means == first_eval.oracle.means and again.oracle.key == first_eval.oracle.key
    job = load_job(tracked_job, avatar)
    schedule = job_schedule(job.manifest)
    other = make_avatar(seed=1)
    assert oracle_key(job, other, schedule) != first_eval.oracle.key  # another avatar: recomputed
    schedule.step2.light_iterations += 1
    assert oracle_key(job, avatar, schedule) != first_eval.oracle.key  # another preset: recomputed
    # A damaged oracle.json (not what the job wrote) is recomputed, not trusted.
    copy = tmp_path / "job"
    shutil.copytree(tracked_job, copy)
    job = load_job(copy, avatar)
    path = copy / ORACLE_FILE
    document = json.loads(path.read_text())
    document["means"]["psnr"] = 99.0
    path.write_text(json.dumps(document))
    assert _read_cache(job.folder, first_eval.oracle.key) is None


def test_eval_cli_json_has_the_ceiling_and_no_oracle_skips_it(first_eval, tracked_job, avatar, tmp_path):
    package = avatar.to_package(tmp_path / "avatar")
    args = argparse.Namespace(jobs=[str(tracked_job)], avatar=str(package), device="cpu", no_csim=True, results=None,
                              section="s", json=str(tmp_path / "m.json"), no_report=True, no_oracle=False)
    assert cli.run(args) == 0
    entry = json.loads((tmp_path / "m.json").read_text())["jobs"][0]
    assert entry["oracle"]["cached"] and entry["oracle"]["means"]["psnr"] == first_eval.oracle.means["psnr"]
    assert entry["metrics"]["psnr_loss"] == pytest.approx(first_eval.means["psnr_loss"])
    assert "oracle PSNR" in cli.format_table([("job", entry["metrics"])])
    copy = tmp_path / "copy"
    shutil.copytree(tracked_job, copy)
    (copy / ORACLE_FILE).unlink()
    args.jobs, args.no_oracle = [str(copy)], True
    assert cli.run(args) == 0
    entry = json.loads((tmp_path / "m.json").read_text())["jobs"][0]
    assert entry["oracle"] is None and "oracle_psnr" not in entry["metrics"]
    assert not (copy / ORACLE_FILE).exists()


def test_no_ceiling_without_ground_truth(tracked_job, avatar, tmp_path):
    job = load_job(tracked_job, avatar)
    job.gt = None
    with pytest.raises(ValueError, match="no ground truth"):
        job_oracle(job, avatar)
