"""metrics/evaluate.py, oracle.py and `dlatrack eval` on a job with an adapted lighting (issue 26): the tracked
frames and the ceiling are rendered with their lighting, the ceiling's lighting is Algorithm 1 at the schedule's
working size with the key poses held at the truth, and the command line's CSIM, ceiling and report paths. The
job is step 1 and step 2 of a few iterations on the clip's first 3 frames (bookkeeping, not accuracy)."""

from __future__ import annotations

import argparse
import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from fit_fixtures import MICRO_STEPS_1_2, ReplayDetector

from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, track_video
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.step2 import adapt_lighting
from dlatrack_engine.fit.video_lighting import VideoLighting, lighting_at
from dlatrack_engine.metrics import cli, image
from dlatrack_engine.metrics.evaluate import evaluate, evaluate_job, score_renders
from dlatrack_engine.metrics.oracle import ceiling_state, job_oracle, job_schedule
from dlatrack_engine.report.job import load_job
from dlatrack_engine.video import read_clip


@pytest.fixture(scope="module")
def lit_job(tmp_path_factory, avatar, clip_dir):
    """Step 1 and G's step 2 (no step 3: the frames keep step 1's poses), the lighting stored in the job."""
    root, marks = clip_dir
    out = tmp_path_factory.mktemp("lit") / "job"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrackOptions, "schedule", lambda self: copy.deepcopy(MICRO_STEPS_1_2))
        track_video(root, avatar, out, TrackOptions(steps="landmarks", key_frames=2, stop=3, write_preview=False,
                                                    write_textures=False, write_overlays=False),
                    runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    return out


@pytest.fixture
def job_copy(lit_job, tmp_path) -> Path:
    """A copy for the tests that write oracle.json into the folder."""
    return Path(shutil.copytree(lit_job, tmp_path / "job"))


def test_the_tracked_frames_are_scored_with_the_jobs_lighting(lit_job, avatar):
    result = evaluate(lit_job, avatar, csim=False, batch=4)
    job = load_job(lit_job, avatar)
    assert job.lighting is not None
    with torch.no_grad():
        lit = job.scene.render(job.params.select([2]), lighting_at(job.lighting, [2]))
        unlit = job.scene.render(job.params.select([2]), None).image[0].numpy()
    render = lit.image[0].numpy()
    assert result.per_frame["psnr"][2] == pytest.approx(image.psnr(render, job.frames[2], job.masks[2]), rel=1e-6)
    assert result.per_frame["psnr"][2] != pytest.approx(image.psnr(unlit, job.frames[2], job.masks[2]), rel=1e-4)
    gain = (lit.relit_texture.mean(dim=(2, 3)) / lit.texture.mean(dim=(2, 3))).numpy()[0]
    for c, value in zip("rgb", gain, strict=True):
        assert result.per_frame[f"lighting_gain_{c}"][2] == pytest.approx(float(value), rel=1e-5)
    assert np.abs(gain - 1.0).max() > 1e-3  # the lighting does change the texture


def test_the_ceiling_of_a_lit_job_is_scored_with_the_lighting_adapted_at_the_truth(job_copy, avatar):
    job = load_job(job_copy, avatar)
    oracle = job_oracle(job, avatar, use_cache=False)
    truth, lighting, keys = ceiling_state(job, avatar, job_schedule(job.manifest))  # seeded: the same lighting
    lit, _ = score_renders(job, truth, lighting, batch=4)
    unlit, _ = score_renders(job, truth, None, batch=4)
    assert oracle.key_frames == keys and len(keys) == 2 and "csim" not in oracle.per_frame
    assert set(lit) == {"l2", "ssim", "psnr"}  # CSIM (dlib, the slow one) only when asked for
    for key in ("l2", "ssim", "psnr"):
        np.testing.assert_allclose(oracle.per_frame[key], lit[key], rtol=1e-6, err_msg=key)
    assert not np.allclose(oracle.per_frame["psnr"], unlit["psnr"], rtol=1e-4)


def _weights(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_the_ceilings_lighting_is_algorithm_1_at_the_working_size_with_the_poses_held(lit_job, avatar):
    """ceiling_state = step 2 run on the clip decoded at the schedule's working size (64 of 96 px), the key
    frames at the true poses with pose_lr_scale 0 whatever the job's schedule says, from seed 0."""
    job = load_job(lit_job, avatar)
    schedule = job_schedule(job.manifest)
    schedule.work_size, schedule.step2.pose_lr_scale = 64, 20.0
    truth, lighting, keys = ceiling_state(job, avatar, schedule)
    clip = read_clip(Path(job.manifest.video), 0, None, 1, work_size=64)
    assert clip.size == (64, 64) and keys == [clip.indices.index(k) for k in keys]  # start 0, stride 1: rows
    scene = FaceScene(avatar, torch.as_tensor(np.diag([2 / 3, 2 / 3, 1.0]) @ np.asarray(job.manifest.K)), 64, 64)
    expected = VideoLighting("G", avatar, scene.renderer, pretrained=True)
    held = copy.deepcopy(schedule)
    held.step2.pose_lr_scale = 0.0
    torch.manual_seed(0)
    adapt_lighting(scene, torch.from_numpy(clip.frames)[keys], truth.select(keys), expected, held, adapt_network=True)
    torch.testing.assert_close(lighting.code, expected.code)
    torch.testing.assert_close(_weights(lighting.network), _weights(expected.network))
    moved = copy.deepcopy(schedule)  # with the poses free (the mutation this guards against) φ comes out elsewhere
    again = VideoLighting("G", avatar, scene.renderer, pretrained=True)
    torch.manual_seed(0)
    adapt_lighting(scene, torch.from_numpy(clip.frames)[keys], truth.select(keys), again, moved, adapt_network=True)
    assert not torch.allclose(_weights(again.network), _weights(expected.network))


def test_the_eval_command_with_csim_and_the_ceiling(job_copy, avatar, tmp_path, capsys):
    package = avatar.to_package(tmp_path / "avatar")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    document = tmp_path / "m.json"
    args = parser.parse_args(["eval", str(job_copy), "--avatar", str(package), "--json", str(document), "--no-report"])
    assert cli.run(args) == 0
    printed = capsys.readouterr().out
    header = printed.strip().splitlines()[-3]
    assert "CSIM ↑" in header and "oracle PSNR ↑" in header and "PSNR lost dB ↓" in header
    entry = json.loads(document.read_text())["jobs"][0]
    ceiling = job_oracle(load_job(job_copy, avatar), avatar)  # read back from the oracle.json the command wrote
    assert ceiling.cached and entry["oracle"] == {**ceiling.to_json(), "cached": False}
    reference = evaluate(job_copy, avatar, oracle=True)  # csim by default
    assert entry["metrics"] == pytest.approx(reference.means, rel=1e-6) and 0 < entry["metrics"]["csim"] <= 1
    assert evaluate_job(job_copy, avatar) == pytest.approx(
        {k: v for k, v in reference.means.items() if "oracle" not in k and "loss" not in k}, rel=1e-6)
