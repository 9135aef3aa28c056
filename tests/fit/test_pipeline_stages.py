"""The pipeline's decisions on jobs of a few iterations (issue 26): what a run writes into its summary and
manifest, what a rerun reads back instead of recomputing, which folders it refuses, and the step-1-alone and
adapt-only paths. The schedule is cut to a handful of iterations: these tests check bookkeeping, not accuracy
(test_pipeline.py checks that)."""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
import time

import numpy as np
import pytest
import torch
from fit_fixtures import FRAMES, MICRO, ReplayDetector

from dlatrack_engine.fit import output
from dlatrack_engine.fit.pipeline import ProgressEvent, Runtime, TrackOptions, adapt_video_lighting, track_video
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.step1 import fit_landmarks
from dlatrack_engine.fit.step2 import refine_iterations
from dlatrack_engine.landmarks import LandmarkTrack
from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError
from dlatrack_engine.wire.lighting_folder import LightingFolderError

pytestmark = pytest.mark.usefixtures("micro_schedule")  # conftest.py: MICRO with the job's K


def _run(root, avatar, out, options, marks, **kwargs):
    detector = ReplayDetector(marks)
    return track_video(root, avatar, out, options, runtime=Runtime(landmark_detector=detector), **kwargs), detector


def test_step_1_alone_writes_step_1s_poses_and_its_summary(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    events: list[ProgressEvent] = []
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False, key_frames=2)
    summary, _ = _run(root, avatar, tmp_path / "job", options, marks, progress=events.append)
    folder = JobFolder(tmp_path / "job")
    manifest = folder.read_manifest()
    assert manifest.state == "completed" and manifest.stages_done == ["landmarks", "init", "track"]
    assert summary.out_dir == str(tmp_path / "job") and summary.frames == FRAMES
    assert (summary.computed_frames, summary.skipped_frames, summary.key_frames) == (FRAMES, 0, [])
    assert summary.stages_done == manifest.stages_done and not summary.cancelled
    assert set(summary.seconds) == {"landmarks", "init", "track"}
    init, data = output.load_params(folder.root / "init.npz", "cpu")
    assert summary.losses == {"landmark": pytest.approx(float(data["loss"].sum()) / FRAMES), "pixel": 0.0, "flow": 0.0}
    assert manifest.metrics["losses"] == summary.losses and manifest.metrics["seconds"] == summary.seconds
    for i in range(FRAMES):  # step 1's poses, frame 3 (no landmarks) not bridged
        np.testing.assert_allclose(folder.read_frame(i)["head_t"], init.t[i].numpy(), atol=1e-6)
    writes = [e for e in events if e.stage == "write"]
    assert [(e.frame, e.total, e.message) for e in writes] == [(4, FRAMES, "frames 0-3"), (6, FRAMES, "frames 4-5")]
    assert [e.frame for e in events if e.stage == "init"] == [1, 2, 3, 4]  # iterations count from 1
    assert all(e.total == 4 and e.loss is not None for e in events if e.stage == "init")
    assert [(e.frame, e.total) for e in events if e.stage == "landmarks"][-1] == (FRAMES, FRAMES)


def test_a_rerun_reads_every_stage_back(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False)
    first, _ = _run(root, avatar, tmp_path / "job", options, marks)
    second, detector = _run(root, avatar, tmp_path / "job", options, marks)
    assert detector.calls == 0  # landmarks.npz read back
    assert (second.computed_frames, second.skipped_frames) == (0, FRAMES)
    assert set(second.seconds) == {"track"}  # neither landmarks nor step 1 recomputed
    assert second.losses == first.losses
    assert JobFolder(tmp_path / "job").read_manifest().state == "completed"


def test_stored_landmarks_of_another_length_are_refused(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False)
    _run(root, avatar, tmp_path / "job", options, marks)
    folder = JobFolder(tmp_path / "job")
    path = folder.root / "landmarks.npz"
    short = LandmarkTrack(marks[:2], np.ones((2, 68), np.float32), np.ones(2, bool), "replay")
    folder.write_file(path, short.to_bytes())
    message = (f"{path}: field 'points' has shape (2, 68, 2), expected ({FRAMES}, 68, 2) "
               f"for the {FRAMES} selected frames")
    with pytest.raises(JobFolderError, match=f"^{re.escape(message)}$"):
        _run(root, avatar, tmp_path / "job", options, marks)


def test_another_request_is_refused_with_both_fingerprints(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False)
    _run(root, avatar, tmp_path / "job", options, marks)
    folder = JobFolder(tmp_path / "job")
    other = TrackOptions(steps="landmarks", lighting="none", write_preview=False, stride=2)
    name = avatar.config.get("name", "avatar")
    message = (f"{folder.manifest_path}: holds results of another request (fingerprint "
               f"{options.fingerprint(root, name)}, this one {other.fingerprint(root, name)}); "
               "choose an empty output folder")
    with pytest.raises(JobFolderError, match=f"^{re.escape(message)}$"):
        _run(root, avatar, tmp_path / "job", other, marks)


def test_an_engine_jobs_manifest_keeps_its_own_state(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    JobFolder.create(tmp_path / "job", "queue-id-1", "track")
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False)
    _run(root, avatar, tmp_path / "job", options, marks)
    manifest = JobFolder(tmp_path / "job").read_manifest()
    assert manifest.job_id == "queue-id-1" and manifest.state == "queued"  # the queue sets it, not the pipeline
    assert manifest.pipeline_fingerprint == options.fingerprint(root, avatar.config.get("name", "avatar"))
    assert manifest.options == options.to_dict() and manifest.frames == list(range(FRAMES))
    assert manifest.metrics["losses"]["pixel"] == 0.0


def test_a_cancel_before_the_first_stage_writes_nothing_and_says_so(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    cancel = threading.Event()
    cancel.set()
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False)
    summary, _ = _run(root, avatar, tmp_path / "job", options, marks, cancel=cancel)
    assert summary.cancelled and summary.computed_frames == 0 and summary.stages_done == []
    assert summary.losses == {} and summary.key_frames == []
    manifest = JobFolder(tmp_path / "job").read_manifest()
    assert manifest.state == "cancelled" and manifest.metrics["losses"] == {}


def test_adapt_only_stores_a_static_lighting_that_a_track_run_reads_back(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    detector = ReplayDetector(marks)
    options = TrackOptions(key_frames=2, write_preview=False, write_overlays=False, write_textures=False)
    adapted = adapt_video_lighting(root, avatar, tmp_path / "job", options,
                                   runtime=Runtime(landmark_detector=detector))
    folder = JobFolder(tmp_path / "job")
    manifest = folder.read_manifest()
    assert manifest.options["time_varying_lighting"] is False and options.time_varying_lighting  # caller's kept
    assert manifest.stages_done == ["landmarks", "init", "adapt"] and adapted.computed_frames == 0
    assert len(adapted.key_frames) == 2 and adapted.losses == {} and "adapt" in adapted.seconds
    keys = np.load(folder.root / "key_poses.npz")["rows"].tolist()
    assert adapted.key_frames == keys
    static = TrackOptions(key_frames=2, write_preview=False, write_overlays=False, write_textures=False,
                          time_varying_lighting=False)
    tracked, _ = _run(root, avatar, tmp_path / "job", static, marks)
    assert tracked.key_frames == adapted.key_frames and set(tracked.seconds) == {"track"}
    assert tracked.computed_frames == FRAMES and tracked.losses["pixel"] > 0


def test_a_reused_lighting_skips_step_2_and_a_rerun_reads_its_key_poses(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    source = tmp_path / "source"
    adapt_video_lighting(root, avatar, source, TrackOptions(key_frames=2, write_preview=False),
                         runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    options = TrackOptions(key_frames=2, lighting_from=str(source), write_preview=False, write_overlays=False,
                           write_textures=False)
    events: list[ProgressEvent] = []
    first, _ = _run(root, avatar, tmp_path / "job", options, marks, progress=events.append)
    folder = JobFolder(tmp_path / "job")
    manifest = folder.read_manifest()
    assert manifest.lighting_source["path"] == str(source / "lighting") and manifest.lighting_source["files"]
    assert "adapt" in manifest.stages_done and "adapt" in first.seconds and first.computed_frames == FRAMES
    keys = np.load(folder.root / "key_poses.npz")["rows"].tolist()
    assert first.key_frames == keys and len(keys) == 2
    adapt = [e for e in events if e.stage == "adapt"]
    total = refine_iterations(options.schedule())
    assert [e.frame for e in adapt] == list(range(1, total + 1)) and {e.total for e in adapt} == {total}
    again, _ = _run(root, avatar, tmp_path / "job", options, marks)
    assert again.key_frames == keys and "adapt" not in again.seconds and again.skipped_frames == FRAMES
    (folder.root / "key_poses.npz").unlink()  # a reused lighting without its key poses: no key rows
    assert _run(root, avatar, tmp_path / "job", options, marks)[0].key_frames == []


def test_the_preview_is_written_last_or_its_error_recorded(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    options = TrackOptions(steps="landmarks", lighting="none", write_overlays=False, write_textures=False)
    events: list[ProgressEvent] = []
    summary, _ = _run(root, avatar, tmp_path / "job", options, marks, progress=events.append)
    manifest = JobFolder(tmp_path / "job").read_manifest()
    assert events[-1].stage == "preview" and (events[-1].frame, events[-1].total) == (FRAMES, FRAMES)
    assert (tmp_path / "job" / "preview.mp4").is_file() and summary.seconds["preview"] > 0
    assert manifest.metrics["preview"]["frames"] == FRAMES and manifest.metrics["seconds"] == summary.seconds


@pytest.mark.parametrize("calibrated", [True, False])
def test_step_1_says_which_landmarks_it_fits(tmp_path, avatar, clip_dir, caplog, calibrated):
    from dlatrack_engine.avatar.runtime import Avatar

    root, marks = clip_dir
    topo = avatar.topology_arrays
    embedding = {"faces": np.roll(topo.landmark_faces, 1).tolist(), "barycentrics": topo.landmark_barycentrics.tolist()}
    config = {**avatar.config, "landmarks": {"scheme": "ibug68", "count": 68,
                                             "detector_embeddings": {"replay": embedding}}}  # fmt: skip
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False, calibrated_landmarks=calibrated)
    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.pipeline"):
        _run(root, Avatar(avatar.dam, avatar.lighting, topo, config), tmp_path / "job", options, marks)
    source = "calibrated for replay" if calibrated else "default"
    assert JobFolder(tmp_path / "job").read_manifest().landmark_embedding == source
    assert f"step 1: landmarks from replay, mesh landmarks ℓ_i: {source}" in caplog.messages
    assert f"landmarks: {FRAMES} frames, 1 failed" in caplog.messages


def test_adapt_only_reports_progress_and_stops_on_cancel(tmp_path, avatar, clip_dir, caplog):
    root, marks = clip_dir
    events: list[ProgressEvent] = []
    cancel = threading.Event()

    def stop_in_step_1(event: ProgressEvent) -> None:
        events.append(event)
        if event.stage == "init":
            cancel.set()

    with caplog.at_level(logging.INFO, logger="dlatrack_engine.fit.pipeline"):
        summary = adapt_video_lighting(root, avatar, tmp_path / "job", TrackOptions(key_frames=2), stop_in_step_1,
                                       cancel, Runtime(landmark_detector=ReplayDetector(marks)))
    assert summary.cancelled and summary.stages_done == ["landmarks"] and events[-1].stage == "init"
    assert all(e.message == "" for e in events if e.stage == "landmarks")
    assert f"job in '{tmp_path / 'job'}' cancelled; rerun to resume" in caplog.messages


def test_step_1_gets_the_landmarks_at_working_size_with_their_weights_and_frame_times(tmp_path, avatar, clip_dir):
    """The job's init.npz is fit_landmarks run on the stored landmarks scaled to the working size (64 of 96 px),
    weighted 1 where detected (clamped at 0.05), 0.2 on the frame without a face, x jaw_weight on the jaw, with
    the video's frame numbers (stride 2) for the temporal prior."""
    root, marks = clip_dir
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False, stride=2)
    schedule = copy.deepcopy(MICRO)
    schedule.work_size, schedule.step1.jaw_weight, schedule.step1.iterations = 64, 0.5, 6
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrackOptions, "schedule", lambda self: copy.deepcopy(schedule))
        start = time.monotonic()
        detector = ReplayDetector(marks, failing=(1,))  # frame 2 (the second call) has no face
        summary = track_video(root, avatar, tmp_path / "job", options, runtime=Runtime(landmark_detector=detector))
        wall = time.monotonic() - start
    assert all(0 < s < wall for s in summary.seconds.values())
    folder = JobFolder(tmp_path / "job")
    manifest = folder.read_manifest()
    assert manifest.frames == [0, 2, 4] and manifest.work_size == [64, 64]
    track = LandmarkTrack.load(str(folder.root / "landmarks.npz"))
    track.confidence[:, ::3] = 0.5  # weights below 1 on the stored track, so the jaw's factor shows
    folder.write_file(folder.root / "landmarks.npz", track.to_bytes())
    (folder.root / "init.npz").unlink()  # step 1 again, from the stored landmarks
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TrackOptions, "schedule", lambda self: copy.deepcopy(schedule))
        _run(root, avatar, tmp_path / "job", options, marks)
    assert track.detected.tolist() == [True, False, True]
    scale = 64 / 96
    scene = FaceScene(avatar, torch.as_tensor(np.diag([scale, scale, 1.0]) @ np.asarray(manifest.K)), 64, 64)
    scene.use_landmarks_of(track.detector)
    weights = torch.where(torch.as_tensor(track.detected)[:, None], torch.as_tensor(track.confidence).clamp_min(0.05),
                          0.2)
    weights[:, :17] *= 0.5
    expected, loss = fit_landmarks(scene, torch.as_tensor(track.points) * scale, weights, schedule,
                                   times=torch.tensor([0.0, 2.0, 4.0], dtype=torch.float64))
    stored, data = output.load_params(folder.root / "init.npz", "cpu")
    for name in ("r", "t", "z"):
        np.testing.assert_allclose(getattr(stored, name).numpy(), getattr(expected, name).detach().numpy(),
                                   rtol=1e-6, atol=1e-7, err_msg=name)
    np.testing.assert_allclose(data["loss"], loss.detach().numpy(), rtol=1e-6)


@pytest.mark.parametrize("adapt", [True, False])
def test_step_2s_progress_counts_every_iteration(tmp_path, avatar, clip_dir, adapt):
    root, marks = clip_dir
    events: list[ProgressEvent] = []
    adapt_video_lighting(root, avatar, tmp_path / "job", TrackOptions(key_frames=2, adapt=adapt), events.append,
                         runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    steps = [e for e in events if e.stage == "adapt"]
    total = MICRO.step2.rounds * (MICRO.step2.light_iterations + (MICRO.step2.model_iterations if adapt else 0))
    assert [e.frame for e in steps] == list(range(1, total + 1)) and {e.total for e in steps} == {total}
    assert all(e.loss is not None and e.message for e in steps)
    info = json.loads((tmp_path / "job" / "lighting" / "lighting.json").read_text())
    assert info["iteration_losses"] == [e.loss for e in steps]  # the report's curve: every iteration's loss
    assert info["key_frames"] == info["key_source_frames"] and len(info["key_frames"]) == 2
    assert info["video"] == str(root) and info["source_frames"] == []  # a static lighting has no frame rows


@pytest.mark.parametrize("switches", [(True, False), (False, True)])
def test_step_3_writes_its_losses_and_only_the_asked_images(tmp_path, avatar, clip_dir, switches):
    """lighting "none" skips step 2; step 3 runs in batches of 4 from start frame 1 (source frames 1-5)."""
    root, marks = clip_dir
    overlays, textures = switches
    options = TrackOptions(lighting="none", write_preview=False, write_overlays=overlays, write_textures=textures,
                           start=1)
    events: list[ProgressEvent] = []
    summary, _ = _run(root, avatar, tmp_path / "job", options, marks, progress=events.append)
    folder = JobFolder(tmp_path / "job")
    assert folder.frames_done() == [1, 2, 3, 4, 5] and summary.computed_frames == 5
    frames = [folder.read_frame(i) for i in folder.frames_done()]
    for key in ("landmark", "pixel", "flow"):
        mean = float(np.mean([f[f"loss_{key}"] for f in frames], dtype=np.float64))
        assert summary.losses[key] == pytest.approx(mean, rel=1e-5), key
    assert summary.losses["pixel"] > 0 and summary.losses["flow"] > 0
    assert folder.overlay_path(1).exists() == overlays and folder.texture_path("relit", 1).exists() == textures
    assert folder.texture_path("full", 5).exists() == textures and folder.overlay_path(5).exists() == overlays
    track = [(e.frame, e.total, e.message) for e in events if e.stage == "track"]
    assert track == [(0, 5, "iteration 1"), (0, 5, "iteration 2"), (4, 5, "iteration 1"), (4, 5, "iteration 2")]
    writes = [(e.frame, e.message) for e in events if e.stage == "write"]
    assert writes == [(4, "frames 1-4"), (5, "frames 5-5")]
    assert summary.stages_done == ["landmarks", "init", "track"] and summary.key_frames == []


def test_the_manifest_records_the_request_and_what_the_detector_missed(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False, start=1, stop=5, focal=150.0)
    summary, _ = _run(root, avatar, tmp_path / "job", options, marks)
    manifest = JobFolder(tmp_path / "job").read_manifest()
    assert manifest.frames == [1, 2, 3, 4] and summary.frames == 4
    assert manifest.K == [[150.0, 0.0, 48.0], [0.0, 150.0, 48.0], [0.0, 0.0, 1.0]] and manifest.K_source == "option"
    assert manifest.size == [96, 96] and manifest.work_size == [96, 96] and manifest.fps > 0
    assert manifest.avatar == avatar.config.get("name", "avatar") and manifest.video == str(root)
    assert manifest.options == options.to_dict() and manifest.schedule == options.schedule().to_dict()
    assert manifest.landmark_detector == "replay" and manifest.landmark_failed_frames == [4]  # 4th call: frame 4


def test_a_lighting_to_reuse_is_checked_before_any_work(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    options = TrackOptions(lighting_from=str(tmp_path / "missing"), write_preview=False)
    with pytest.raises(LightingFolderError, match="neither a lighting folder"):
        _run(root, avatar, tmp_path / "job", options, marks)
    assert not (tmp_path / "job").exists()


def test_a_rerun_recomputes_a_damaged_frame(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    options = TrackOptions(steps="landmarks", lighting="none", write_preview=False, write_overlays=False,
                           write_textures=False)
    _run(root, avatar, tmp_path / "job", options, marks)
    path = JobFolder(tmp_path / "job").frame_path(2)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF  # same size, another checksum: only the resume's verify_files sees it
    path.write_bytes(bytes(data))
    again, _ = _run(root, avatar, tmp_path / "job", options, marks)
    assert (again.computed_frames, again.skipped_frames) == (1, FRAMES - 1)  # frame 2 alone
    assert JobFolder(tmp_path / "job").read_frame(2)["head_t"].shape == (3,)
