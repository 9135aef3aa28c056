"""Step 3 inside the pipeline (issue 26): it runs on the job's lighting and the video's frame times, its terms
and relit textures are written with that lighting, its progress events carry the loss, and a cancel stops it
inside a batch. Jobs of a few iterations (fit_fixtures.MICRO): bookkeeping, not accuracy."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from fit_fixtures import FRAMES, MICRO, ReplayDetector

from dlatrack_engine.fit import output
from dlatrack_engine.fit.image_term import image_term
from dlatrack_engine.fit.pipeline import ProgressEvent, Runtime, TrackOptions, track_video
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.step3 import track_batch
from dlatrack_engine.fit.video_lighting import lighting_at
from dlatrack_engine.report.job import load_job
from dlatrack_engine.video import read_clip
from dlatrack_engine.wire.jobfolder import JobFolder

pytestmark = pytest.mark.usefixtures("micro_schedule")  # conftest.py: MICRO with the job's K


def _run(root, avatar, out, options, marks, **kwargs):
    return track_video(root, avatar, out, options, runtime=Runtime(landmark_detector=ReplayDetector(marks)), **kwargs)


def test_step_3_fits_and_writes_with_the_jobs_lighting(tmp_path, avatar, clip_dir):
    """Each frame's stored pixel term is Eq. 7 at its stored pose under the job's lighting, and its relit
    texture is not the fully lit one; every step-3 progress event carries the loss."""
    root, marks = clip_dir
    events: list[ProgressEvent] = []
    options = TrackOptions(key_frames=2, write_preview=False, write_overlays=False)
    _run(root, avatar, tmp_path / "job", options, marks, progress=events.append)
    job = load_job(tmp_path / "job", avatar)
    assert job.lighting is not None and job.indices == list(range(FRAMES))
    for i in (0, 5):  # one frame of each batch
        with torch.no_grad():
            pixel, _ = image_term(job.scene, torch.from_numpy(job.frames[[i]]), job.params.select([i]),
                                  lighting_at(job.lighting, [i]), MICRO.laplacian_weight)
            unlit, _ = image_term(job.scene, torch.from_numpy(job.frames[[i]]), job.params.select([i]), None,
                                  MICRO.laplacian_weight)
        stored = float(job.folder.read_frame(i)["loss_pixel"])
        assert stored == pytest.approx(float(pixel[0]), rel=1e-4) and stored != pytest.approx(float(unlit[0]), rel=1e-3)
        relit = job.folder.texture_path("relit", i).read_bytes()
        assert relit != job.folder.texture_path("full", i).read_bytes()
    track = [e for e in events if e.stage == "track"]
    assert len(track) == 4 and all(e.loss is not None and e.loss > 0 for e in track)


def test_step_3_uses_the_videos_frame_times(tmp_path, avatar, clip_dir):
    """Stride 2: frames 0, 2, 4 in one batch, fitted from step 1's poses with the temporal prior on their frame
    numbers (not on 0, 1, 2, and not without the prior)."""
    root, marks = clip_dir
    options = TrackOptions(lighting="none", stride=2, write_preview=False, write_overlays=False, write_textures=False)
    _run(root, avatar, tmp_path / "job", options, marks)
    folder = JobFolder(tmp_path / "job")
    init, _ = output.load_params(folder.root / "init.npz", "cpu")
    K = np.asarray(folder.read_manifest().K)
    scene = FaceScene(avatar, torch.as_tensor(K), 96, 96)
    frames = torch.from_numpy(read_clip(root, 0, None, 2).frames)

    def fitted(times):
        return track_batch(scene, frames, init, None, MICRO, times=times)[0].t.detach().numpy()

    expected = fitted(torch.tensor([0.0, 2.0, 4.0], dtype=torch.float64))
    stored = np.stack([folder.read_frame(i)["head_t"] for i in (0, 2, 4)])
    np.testing.assert_allclose(stored, expected, rtol=1e-5, atol=1e-7)
    for other in (None, torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64)):
        assert not np.allclose(stored, fitted(other), rtol=1e-5, atol=1e-7)


def test_a_cancel_inside_step_3_writes_none_of_its_batch(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    cancel, events = threading.Event(), []

    def stop_in_step_3(event: ProgressEvent) -> None:
        events.append(event)
        if event.stage == "track":
            cancel.set()

    options = TrackOptions(lighting="none", write_preview=False, write_overlays=False, write_textures=False)
    summary = _run(root, avatar, tmp_path / "job", options, marks, progress=stop_in_step_3, cancel=cancel)
    assert summary.cancelled and summary.computed_frames == 0 and "track" not in summary.stages_done
    assert [e.stage for e in events].count("track") == 1 and "write" not in [e.stage for e in events]
