"""A resumed job with a lighting continues from what it stored (issue 26): the lighting and the key poses are
read back, so a recomputed frame equals the first run's; a reused lighting is refitted, copied with its new code
and read back; cancel stops step 2; a preview that cannot be written is recorded. Jobs of a few iterations
(fit_fixtures.MICRO): these tests check bookkeeping, not accuracy."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time

import numpy as np
import pytest
from fit_fixtures import FRAMES, ReplayDetector

from dlatrack_engine.fit import output
from dlatrack_engine.fit.pipeline import ProgressEvent, Runtime, TrackOptions, adapt_video_lighting, track_video
from dlatrack_engine.wire.jobfolder import JobFolder

LIGHT = {"key_frames": 2, "write_preview": False, "write_overlays": False, "write_textures": False}


pytestmark = pytest.mark.usefixtures("micro_schedule")  # conftest.py: MICRO with the job's K


def _run(root, avatar, out, options, marks, **kwargs):
    return track_video(root, avatar, out, options, runtime=Runtime(landmark_detector=ReplayDetector(marks)), **kwargs)


def _damage(folder: JobFolder, index: int) -> None:
    """Same size, another checksum: the resume's verify_files forgets the frame, so it is recomputed."""
    path = folder.frame_path(index)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def _rerun_frame(root, avatar, out, options, marks, index: int = 2):
    """-> the rerun's summary and the recomputed frame `index`."""
    _damage(JobFolder(out), index)
    summary = _run(root, avatar, out, options, marks)
    assert (summary.computed_frames, summary.skipped_frames) == (1, FRAMES - 1)
    return summary, JobFolder(out).read_frame(index)


def _same_frame(a: dict, b: dict) -> None:
    for key in ("head_t", "head_R", "vertices", "loss_pixel"):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-5, atol=1e-7, err_msg=key)


def test_a_resumed_job_reads_its_lighting_and_key_poses_back(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    out, options = tmp_path / "job", TrackOptions(**LIGHT)
    start = time.monotonic()
    first = _run(root, avatar, out, options, marks)
    assert 0 < first.seconds["adapt"] < time.monotonic() - start
    folder = JobFolder(out)
    frame = folder.read_frame(2)
    assert (folder.root / "lighting" / "preview.png").is_file()  # the key frame relit with the new lighting
    again, recomputed = _rerun_frame(root, avatar, out, options, marks)
    assert again.key_frames == first.key_frames and set(again.seconds) == {"track"}
    _same_frame(recomputed, frame)  # step 3 from the same poses with the same lighting
    path = folder.root / "key_poses.npz"
    params, _ = output.load_params(path, "cpu")
    output.save_params(folder, path, params)  # key poses saved without their rows: the rows of lighting.json
    again, recomputed = _rerun_frame(root, avatar, out, options, marks)
    assert again.key_frames == first.key_frames
    _same_frame(recomputed, frame)
    path.unlink()  # a job from before the key poses were refined: its key frames, step 1's poses
    again, recomputed = _rerun_frame(root, avatar, out, options, marks)
    assert again.key_frames == first.key_frames and set(again.seconds) == {"track"}
    assert not np.allclose(recomputed["head_t"], frame["head_t"], rtol=1e-5, atol=1e-7)


def test_a_lighting_stage_not_marked_done_is_recomputed(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    options = TrackOptions(**LIGHT)
    runtime = Runtime(landmark_detector=ReplayDetector(marks))
    adapt_video_lighting(root, avatar, tmp_path / "job", options, runtime=runtime)
    folder = JobFolder(tmp_path / "job")
    folder.update_manifest(stages_done=["landmarks", "init"])  # lighting/ written, the stage not marked
    again = adapt_video_lighting(root, avatar, tmp_path / "job", options, runtime=runtime)
    assert "adapt" in again.seconds and folder.read_manifest().stages_done == ["landmarks", "init", "adapt"]


@pytest.mark.parametrize("kind", ["G", "SH"])
def test_a_reused_lighting_is_refitted_copied_and_read_back(tmp_path, avatar, clip_dir, kind):
    """The source adapted on 3 key frames of frames 2-5 (other key rows than this job's 2); the job copies φ
    byte for byte, stores the light code refitted on its own frames, and a resume renders with what it stored."""
    root, marks = clip_dir
    source = tmp_path / "source"
    adapt_video_lighting(root, avatar, source, TrackOptions(**{**LIGHT, "key_frames": 3}, lighting=kind, start=2),
                         runtime=Runtime(landmark_detector=ReplayDetector(marks[2:], failing=(1,))))
    source_info = (source / "lighting" / "lighting.json").read_text()
    options = TrackOptions(**LIGHT, lighting=kind, lighting_from=str(source))
    start = time.monotonic()
    first = _run(root, avatar, tmp_path / "job", options, marks)
    assert 0 < first.seconds["adapt"] < time.monotonic() - start
    assert first.key_frames != json.loads(source_info)["key_frames"]  # rows of another selection
    job_light, src_light = tmp_path / "job" / "lighting", source / "lighting"
    assert (job_light / "light_code.npy").read_bytes() != (src_light / "light_code.npy").read_bytes()
    if kind == "G":
        assert (job_light / "G.safetensors").read_bytes() == (src_light / "G.safetensors").read_bytes()
    frame = JobFolder(tmp_path / "job").read_frame(2)
    again, recomputed = _rerun_frame(root, avatar, tmp_path / "job", options, marks)
    assert again.key_frames == first.key_frames and "adapt" not in again.seconds
    _same_frame(recomputed, frame)


@pytest.mark.parametrize("reuse", [False, True])
def test_a_cancel_inside_step_2_stops_it(tmp_path, avatar, clip_dir, reuse):
    root, marks = clip_dir
    options = TrackOptions(**LIGHT)
    if reuse:
        adapt_video_lighting(root, avatar, tmp_path / "source", options,
                             runtime=Runtime(landmark_detector=ReplayDetector(marks)))
        options = TrackOptions(**LIGHT, lighting_from=str(tmp_path / "source"))
    cancel, events = threading.Event(), []

    def stop_in_step_2(event: ProgressEvent) -> None:
        events.append(event)
        if event.stage == "adapt":
            cancel.set()

    summary = _run(root, avatar, tmp_path / "job", options, marks, progress=stop_in_step_2, cancel=cancel)
    assert summary.cancelled and summary.stages_done == ["landmarks", "init"]
    assert [e.stage for e in events].count("adapt") == 1 and events[-1].stage == "adapt"


def test_a_preview_that_cannot_be_written_is_recorded(tmp_path, avatar, clip_dir, caplog):
    root, marks = clip_dir
    options = TrackOptions(steps="landmarks", lighting="none", write_overlays=False, write_textures=False,
                           write_preview=False)
    _run(root, avatar, tmp_path / "job", options, marks)
    (tmp_path / "job" / "preview.mp4").mkdir()  # the encoded file cannot replace a folder
    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.fit.pipeline"):
        summary = _run(root, avatar, tmp_path / "job", dataclasses.replace(options, write_preview=True),
                       marks)
    manifest = JobFolder(tmp_path / "job").read_manifest()
    assert not summary.cancelled and "preview" not in summary.seconds and manifest.state == "completed"
    assert "preview.mp4" in manifest.preview_error
    assert f"{tmp_path / 'job'}: preview.mp4 not written: {manifest.preview_error}" in caplog.messages
