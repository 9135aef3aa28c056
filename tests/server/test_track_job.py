"""`track` through the engine: the real registration pipeline runs, streams progress, cancels; bad options.

A full track of even a tiny clip takes minutes on 2 CPU cores, so this test lets the real pipeline start
(video read, stage-1 optimisation with loss reports) and then cancels it; the pipeline's own tests cover
the finished job folder. The landmark stage is pre-seeded in the output folder (`landmarks.npz`, which is
how the pipeline resumes stage 1), because no landmark detector finds a face in a synthetic 32² clip.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest
from conftest import Engine

from dlatrack_engine.landmarks.base import LandmarkTrack


def _seeded_out_dir(root: Path, frames: int) -> Path:
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    points = (16 + 4 * rng.standard_normal((frames, 68, 2))).astype(np.float32)
    LandmarkTrack(points, np.ones((frames, 68), np.float32), np.ones(frames, bool), "seeded").save(
        str(root / "landmarks.npz")
    )
    return root


def _mp4(path: Path, frames: int) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (32, 32))
    for i in range(frames):
        writer.write(np.full((32, 32, 3), 60 + 20 * i, np.uint8))
    writer.release()
    return path


def _progress_until(client, stage: str, timeout: float = 60.0) -> list:
    events, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        event = client.events().get(timeout=timeout)
        events.append(event)
        if event.kind == "progress" and event.header.get("stage") == stage and event.header.get("loss") is not None:
            return events
        assert event.kind not in ("done", "error"), event.header
    raise AssertionError(f"no '{stage}' progress with a loss within {timeout} s: {[e.header for e in events]}")


def test_uploaded_video_runs_the_pipeline_then_cancels(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tmp_path: Path
) -> None:
    out = _seeded_out_dir(tmp_path / "job", 4)
    video = _mp4(tmp_path / "clip.mp4", 4).read_bytes()
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        job_id = client.track(
            None, avatar_id, {"key_frames": 2}, video_bytes=video, video_name="clip.mp4", out_dir=str(out)
        )
        uploads = shared_engine.state_dir / "uploads" / job_id
        assert (uploads / "clip.mp4").read_bytes() == video  # staged on the engine's side
        events = _progress_until(client, "init")
        assert any(e.header.get("state") == "running" for e in events)
        client.cancel(job_id)
        final = client.wait(job_id, timeout=60, poll_s=0.1)
        assert final["state"] == "cancelled" and final["summary"] == {}
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["state"] == "cancelled" and manifest["job_id"] == job_id
        assert manifest["options"]["key_frames"] == 2 and manifest["frames"] == [0, 1, 2, 3]  # written by the pipeline
        assert not uploads.exists()  # the upload is dropped once the job has ended


BAD_OPTIONS = [
    ({"quality": "ultra"}, "quality must be 'fast' or 'paper'"),
    ({"key_frames": "many"}, "'key_frames' must be int"),
    ({"stride": True}, "'stride' must be int"),
    ({"device": "cuda"}, "cannot be set by a client"),
    ({"colour": 1}, "unknown track option 'colour'"),
    ({"stop": -5}, "'stop'"),
    ({"stop": 0}, "'stop'"),
    ({"start": 3, "stop": 2}, "'stop'"),
    ({"start": 500}, "past the end"),
    ({"focal": 0}, "'focal'"),
    ({"focal": -800.0}, "'focal'"),
    ({"detector": "dlib"}, "'detector'"),
    ({"key_frames": -1}, "'key_frames'"),
    ({"batch_size": 0}, "'batch_size'"),
    ({"batch_size": -3}, "'batch_size'"),
    ({"stride": 0}, "stride"),
    ({"flow_weight": -1.0}, "'flow_weight'"),
]


def test_bad_track_options_are_rejected_at_submission(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tiny_video: Path
) -> None:
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        jobs_before = len(client.jobs())
        for options, message in BAD_OPTIONS:
            with pytest.raises(client_mod.EngineError) as info:
                client.track(str(tiny_video), avatar_id, options)
            assert info.value.code == "bad_argument" and message in info.value.message, (options, info.value)
        with pytest.raises(client_mod.EngineError, match="quality must be"):  # `adapt` shares the checks
            client.adapt(str(tiny_video), avatar_id, {"quality": "ultra"})
        assert len(client.jobs()) == jobs_before  # nothing was queued


def test_a_clip_without_a_face_fails_with_a_named_error(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tiny_video: Path, tmp_path: Path
) -> None:
    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        job_id = client.track(str(tiny_video), avatar_id, {"key_frames": 2}, out_dir=str(tmp_path / "job"))
        final = client.wait(job_id, timeout=120, poll_s=0.1)
        assert final["state"] == "failed" and final["error"]["code"] == "landmarks_failed"
        assert final["error"]["message"]  # "no face in any frame" (or "no detector model" where none is installed)
        kinds = []
        while "done" not in kinds:
            event = client.events().get(timeout=30)
            if event.job_id == job_id:
                kinds.append(event.kind)
        assert kinds[-2:] == ["error", "done"]
        manifest = json.loads((tmp_path / "job" / "manifest.json").read_text())
        assert manifest["state"] == "failed" and manifest["error"]["code"] == "landmarks_failed"


def test_options_are_checked_once_and_the_job_runs_from_the_checked_fields(
    shared_engine: Engine, client_mod: ModuleType, tiny_avatar: Path, tiny_video: Path, tmp_path: Path
) -> None:
    """`check_track_options` runs at submission; the job's record keeps the TrackOptions it returned (the
    defaults filled in), which the runner only rebuilds. The add-on's client asks for no arrays in frame
    events: it reads each frame once, from the job folder."""
    from dlatrack_engine.fit.pipeline import TrackOptions

    with shared_engine.client(client_mod) as client:
        avatar_id = client.load_avatar(tiny_avatar)
        job_id = client.track(str(tiny_video), avatar_id, {"key_frames": 2, "stride": 2}, out_dir=str(tmp_path / "j"))
        entry = json.loads((shared_engine.state_dir / "jobs" / f"{job_id}.json").read_text())
        client.cancel(job_id)
        client.wait(job_id, timeout=60, poll_s=0.1)
    assert entry["params"]["options"] == TrackOptions(key_frames=2, stride=2).to_dict()
    assert entry["params"]["stream_results"] is False and entry["params"]["stream_textures"] is False


def test_stored_options_that_no_longer_fit_fail_the_job_with_a_named_error(tmp_path: Path) -> None:
    """A job queued by an engine whose TrackOptions had other fields is not re-checked field by field, but
    its rebuild still fails as `bad_argument` naming the field, not as an internal error."""
    from dlatrack_engine.server.jobqueue import JobContext, JobError
    from dlatrack_engine.server.work import run_pipeline
    from dlatrack_engine.wire.jobfolder import JobFolder
    from dlatrack_engine.wire.jobs import Job

    folder = JobFolder.create(tmp_path / "job", "job1", "track")
    context = JobContext(Job(kind="track", params={}), folder, {"options": {"landmark_detector": "x"}}, None)
    with pytest.raises(JobError) as info:
        run_pipeline(context, lambda path: None, adapt_only=False)
    assert info.value.code == "bad_argument" and "landmark_detector" in info.value.message
