"""metrics/evaluate.py and the ceiling on a job of a few step-1 iterations without lighting (issue 26): what each
series is, that the means are their means, that the batch size changes nothing, the landmark residual in
pixels, CSIM of a frame with itself, and the ceiling of a job without lighting (the avatar at the truth)."""

from __future__ import annotations

import argparse
import copy
import json
import logging

import numpy as np
import pytest
import torch
from fit_fixtures import FRAMES, MICRO_STEPS_1_2, ReplayDetector

from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, track_video
from dlatrack_engine.metrics import cli, image
from dlatrack_engine.metrics.evaluate import (
    _gt_errors,
    evaluate,
    evaluate_job,
    landmark_residual_px,
    score_renders,
)
from dlatrack_engine.metrics.identity import csim, embedding, landmark_box
from dlatrack_engine.metrics.oracle import ceiling_state, job_oracle, job_schedule, oracle_key
from dlatrack_engine.report.job import load_job


@pytest.fixture(scope="module")
def job_dir(tmp_path_factory, avatar, clip_dir):
    root, marks = clip_dir
    out = tmp_path_factory.mktemp("eval") / "job"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrackOptions, "schedule", lambda self: copy.deepcopy(MICRO_STEPS_1_2))
        track_video(root, avatar, out, TrackOptions(steps="landmarks", lighting="none", write_preview=False,
                                                    write_textures=False, write_overlays=False),
                    runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    return out


def test_the_means_are_the_series_means_and_are_stored(job_dir, avatar):
    result = evaluate(job_dir, avatar, csim=False, batch=4)
    job = load_job(job_dir, avatar)
    assert result.frames == list(range(FRAMES)) and result.lost_frames == [3] and result.oracle is None
    for key in ("l2", "ssim", "psnr"):
        assert result.means[key] == pytest.approx(float(np.mean(result.per_frame[key])), rel=1e-12)
        assert result.per_frame[key].shape == (FRAMES,)
    assert "csim" not in result.means and "csim" not in result.per_frame
    with torch.no_grad():
        render = job.scene.render(job.params.select([2]), None).image[0].numpy()
    # a render of frame 2 alone: float32 rounding differs from the batch of 4 at 1e-8
    assert result.per_frame["psnr"][2] == pytest.approx(image.psnr(render, job.frames[2], job.masks[2]), rel=1e-6)
    assert result.per_frame["l2"][2] == pytest.approx(image.l2_error(render, job.frames[2], job.masks[2]), rel=1e-6)
    assert result.per_frame["ssim"][2] == pytest.approx(image.ssim(render, job.frames[2], job.masks[2]), rel=1e-6)
    for c in "rgb":  # no lighting: the relit texture is the texture
        np.testing.assert_allclose(result.per_frame[f"lighting_gain_{c}"], 1.0, rtol=1e-6)
    assert {"vertex_mm", "rotation_deg", "jitter_mm"} <= set(result.means)
    assert result.per_frame["vertex_mm"].shape == (FRAMES,)
    assert load_job(job_dir, avatar).manifest.metrics["eval"] == result.means
    again = evaluate(job_dir, avatar, csim=False, batch=1)
    assert again.means == pytest.approx(result.means, rel=1e-6)


def test_the_landmark_residual_is_the_mean_pixel_distance(job_dir, avatar):
    job = load_job(job_dir, avatar)
    with torch.no_grad():
        mesh = job.scene.landmarks_2d(job.params).numpy()
    offsets = np.zeros_like(mesh)
    step = np.arange(1, FRAMES + 1, dtype=np.float32)[:, None, None]
    offsets[:, :34] = step * (3.0, 4.0)  # frame i: half the landmarks 5 (i + 1) px off, the rest on the mesh
    job.marks.points = mesh + offsets
    residual = landmark_residual_px(job)
    assert np.isnan(residual[3]) and not job.marks.detected[3]
    np.testing.assert_allclose(np.delete(residual, 3), np.delete(2.5 * step.ravel(), 3), rtol=1e-5)


def test_csim_of_a_frame_with_itself_is_one_and_with_another_face_less(job_dir, avatar):
    job = load_job(job_dir, avatar)
    box = landmark_box(job.marks.points[0], job.scene.width, job.scene.height)
    vector = embedding(job.frames[0], box)
    assert vector.shape == (128,) and np.linalg.norm(vector) == pytest.approx(1.0)
    assert csim(job.frames[0], job.frames[0], box) == pytest.approx(1.0)
    assert csim(job.frames[0], job.frames[0][::-1].copy(), box) < 0.99
    job.indices = job.indices[:2]  # two frames are enough for the CSIM branch
    series, _ = score_renders(job, job.params, None, csim=True, batch=8)
    composite_free = csim(job.frames[1], job.frames[1], landmark_box(job.marks.points[1], job.scene.width,
                                                                      job.scene.height))
    assert series["csim"].shape == (2,) and np.all(series["csim"] < composite_free)
    with torch.no_grad():
        out = job.scene.render(job.params.select([1]), None)
    m, render = out.mask[0].numpy(), out.image[0].numpy()
    composite = job.frames[1] * (1 - m) + render * m  # the render pasted over the frame where it covers
    box = landmark_box(job.marks.points[1], job.scene.width, job.scene.height)
    assert series["csim"][1] == pytest.approx(csim(composite, job.frames[1], box), rel=1e-6)


def test_the_ceiling_without_lighting_is_the_avatar_at_the_truth(job_dir, avatar, tmp_path):
    result = evaluate(job_dir, avatar, csim=False, oracle=True)
    ceiling = result.oracle
    assert ceiling is not None and ceiling.key_frames == [] and not ceiling.cached
    for key in ("l2", "ssim", "psnr"):
        np.testing.assert_allclose(result.per_frame[f"oracle_{key}"], ceiling.per_frame[key])
        assert ceiling.means[key] == pytest.approx(float(np.mean(ceiling.per_frame[key])), rel=1e-12)
    assert result.means["oracle_psnr"] == ceiling.means["psnr"]
    assert result.means["psnr_loss"] == pytest.approx(ceiling.means["psnr"] - result.means["psnr"])
    assert ceiling.means["psnr"] > result.means["psnr"]  # four step-1 iterations lose to the truth
    job = load_job(job_dir, avatar)
    assert job_oracle(job, avatar).cached and job_oracle(job, avatar, use_cache=False).cached is False
    assert ceiling.key == oracle_key(job, avatar, job_schedule(job.manifest)) and 0 < ceiling.seconds < 60
    job.gt = None
    with pytest.raises(ValueError, match="the clip has no ground truth"):
        job_oracle(job, avatar)


def test_a_truth_of_another_mesh_has_no_geometry_errors(job_dir, avatar, caplog):
    job = load_job(job_dir, avatar)
    job.gt = {**job.gt, "vertices": job.gt["vertices"][:, :10]}
    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.metrics.evaluate"):
        assert _gt_errors(job, avatar) == ({}, {})
    shapes = f"GT mesh {job.gt['vertices'].shape[1:]} differs from the avatar's {job.track['vertices'].shape[1:]}"
    assert f"'{job.gt_path}': {shapes}; skipping geometry errors" in caplog.messages


def test_the_landmark_error_against_the_truth_is_in_pixels(job_dir, avatar):
    """_gt_errors' landmark_px: 0 on the true state; the head moved 1 mm sideways shifts each landmark's
    projection by f * 1 mm / depth, so the mean lies between those of the nearest and farthest vertex."""
    job = load_job(job_dir, avatar)
    job.track = {**job.track, **{k: job.gt[k].copy() for k in ("vertices", "head_R", "head_t")}}
    assert _gt_errors(job, avatar)[0]["landmark_px"] == pytest.approx(0.0, abs=1e-9)
    job.track["head_t"][:, 0] += 0.001
    depth = np.einsum("nij,nvj->nvi", job.gt["head_R"], job.gt["vertices"])[..., 2] + job.gt["head_t"][:, 2:]
    focal = float(np.asarray(job.gt["K"])[0, 0])
    assert focal * 0.001 / depth.max() < _gt_errors(job, avatar)[0]["landmark_px"] < focal * 0.001 / depth.min()


def test_evaluate_job_returns_the_means(job_dir, avatar):
    assert evaluate_job(job_dir, avatar, csim=False, batch=2) == pytest.approx(
        evaluate(job_dir, avatar, csim=False).means, rel=1e-6)


def test_the_eval_command_prints_writes_and_records_the_table(job_dir, avatar, tmp_path, capsys):
    package = avatar.to_package(tmp_path / "avatar")
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    results, document = tmp_path / "RESULTS.md", tmp_path / "m.json"
    results.write_text("# Results\n\n## Other\n\nkept\n")
    args = parser.parse_args(["eval", str(job_dir), "--avatar", str(package), "--no-csim", "--no-oracle", "--no-report",
                              "--results", str(results), "--section", "Eval here", "--json", str(document)])
    args.jobs = [str(job_dir), str(job_dir)]  # the same job twice: two rows, both jobs in the command line
    assert args.func is cli.run and args.device is None and args.no_report
    assert cli.run(args) == 0
    means = evaluate(job_dir, avatar, csim=False).means
    printed = capsys.readouterr().out
    assert "report:" not in printed
    table = cli.format_table([(job_dir.name, json.loads(document.read_text())["jobs"][0]["metrics"])] * 2)
    assert printed.rstrip().endswith(table) and "CSIM" not in table and "oracle" not in table
    entry = json.loads(document.read_text())["jobs"][0]
    assert entry["job"] == str(job_dir.resolve()) and entry["oracle"] is None
    assert entry["metrics"] == pytest.approx(means, rel=1e-6)
    text = results.read_text()
    assert "## Other\n\nkept" in text and "## Eval here" in text and table in text
    assert f"dlatrack eval {job_dir} {job_dir}" in text


def test_the_eval_command_refuses_without_an_avatar_or_a_job():
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "job"])
    with pytest.raises(SystemExit):
        parser.parse_args(["eval", "--avatar", "a"])
    args = parser.parse_args(["eval", "j1", "j2", "--avatar", "a"])
    assert args.jobs == ["j1", "j2"] and args.section == "Registration: evaluation"
    assert (args.no_csim, args.no_oracle, args.no_report, args.results, args.json) == (False, False, False, None, None)


def test_the_ceilings_key_covers_its_inputs(job_dir, avatar):
    job = load_job(job_dir, avatar)
    schedule = job_schedule(job.manifest)
    key = oracle_key(job, avatar, schedule)
    assert key == oracle_key(load_job(job_dir, avatar), avatar, job_schedule(job.manifest)) and len(key) == 64

    def changed(edit) -> str:
        other = load_job(job_dir, avatar)
        edit(other)
        return oracle_key(other, avatar, schedule)

    edits = {
        "frames": lambda j: setattr(j, "indices", [i + 1 for i in j.indices]),
        "K": lambda j: setattr(j.manifest, "K", [[v * 2 for v in row] for row in j.manifest.K]),
        "lighting": lambda j: j.manifest.options.update(lighting="SH"),
        "adapt": lambda j: j.manifest.options.update(adapt=False),
        "pixels": lambda j: j.frames.__setitem__((0, 0, 0, 0), j.frames[0, 0, 0, 0] + 0.5),
        "mask": lambda j: j.masks[1].__setitem__((0, 0), 1.0 - j.masks[1][0, 0]),
        "truth": lambda j: j.gt["head_t"].__setitem__((2, 2), j.gt["head_t"][2, 2] + 0.01),
    }
    for name, edit in edits.items():
        assert changed(edit) != key, name


def _weights(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


def test_the_ceiling_adapts_the_jobs_lighting_choice_at_the_truth(job_dir, avatar):
    job = load_job(job_dir, avatar)
    schedule = job_schedule(job.manifest)
    pose_scale = schedule.step2.pose_lr_scale
    job.manifest.options.update(lighting="G", adapt=True, pretrained_lighting=True)
    truth, lighting, keys = ceiling_state(job, avatar, schedule)
    assert schedule.step2.pose_lr_scale == pose_scale  # the poses are held on a copy of the schedule
    assert lighting.kind == "G" and lighting.renderer is job.scene.renderer
    assert len(keys) == schedule.step2.key_frames and set(keys) <= set(job.indices)
    assert float(lighting.code.abs().sum()) > 0  # l moved from zeros
    assert not torch.equal(_weights(lighting.network), _weights(avatar.lighting))  # G adapted
    np.testing.assert_allclose(truth.t.numpy(), job.gt["head_t"], atol=1e-6)  # the true pose, in metres
    again = ceiling_state(job, avatar, schedule)[1]
    assert torch.equal(again.code, lighting.code)  # seeded
    job.manifest.options.update(adapt=False)
    held = ceiling_state(job, avatar, schedule)[1]
    assert torch.equal(_weights(held.network), _weights(avatar.lighting))  # G kept, only l fitted
    job.manifest.options.update(pretrained_lighting=False)
    fresh = ceiling_state(job, avatar, schedule)[1]
    assert not torch.equal(_weights(fresh.network), _weights(avatar.lighting))  # G re-drawn, not the avatar's
    job.manifest.options.update(lighting="SH")
    assert ceiling_state(job, avatar, schedule)[1].kind == "SH"
