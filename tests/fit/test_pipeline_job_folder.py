"""What the pipeline writes about a job besides its frames (issue 26): the manifest while the job runs, its
defaults, the detector's warning naming the clip, and the lighting preview at the first key frame's refined
pose. Jobs of a few iterations (fit_fixtures.MICRO)."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import torch
from fit_fixtures import FRAMES, ReplayDetector

from dlatrack_engine import __version__
from dlatrack_engine.avatar.runtime import Avatar
from dlatrack_engine.fit import lighting_store, output
from dlatrack_engine.fit.lighting_preview import preview_png
from dlatrack_engine.fit.pipeline import ProgressEvent, Runtime, TrackOptions, adapt_video_lighting, track_video
from dlatrack_engine.fit.propagation import bridge_gaps
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.video_lighting import lighting_at
from dlatrack_engine.landmarks import LandmarkTrack
from dlatrack_engine.video import read_clip
from dlatrack_engine.wire.jobfolder import JobFolder

STEP_1 = {"steps": "landmarks", "lighting": "none", "write_preview": False}


pytestmark = pytest.mark.usefixtures("micro_schedule")  # conftest.py: MICRO with the job's K


def test_the_manifest_says_running_while_the_job_runs(tmp_path, avatar, clip_dir, caplog):
    """An avatar without a name is "avatar"; the manifest's kind, engine version and state; the detector's
    warning names the clip; a finished job's summary says not cancelled (False, not a falsy stand-in); step 1
    alone writes step 1's pose on the frame without landmarks, not the bridged one."""
    root, marks = clip_dir
    unnamed = Avatar(avatar.dam, avatar.lighting, avatar.topology_arrays,
                     {k: v for k, v in avatar.config.items() if k != "name"})
    states: list[str] = []

    def watch(event: ProgressEvent) -> None:
        states.append(JobFolder(tmp_path / "job").read_manifest().state)

    with caplog.at_level(logging.WARNING, logger="dlatrack_engine.landmarks"):
        summary = track_video(root, unnamed, tmp_path / "job", TrackOptions(**STEP_1), watch,
                              runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    manifest = JobFolder(tmp_path / "job").read_manifest()
    assert manifest.avatar == "avatar" and manifest.pipeline_fingerprint == TrackOptions(**STEP_1).fingerprint(
        root, "avatar")
    assert (manifest.kind, manifest.engine_version, manifest.state) == ("track", __version__, "completed")
    assert states and set(states) == {"running"}
    assert summary.cancelled is False
    folder = JobFolder(tmp_path / "job")
    init, _ = output.load_params(folder.root / "init.npz", "cpu")
    detected = LandmarkTrack.load(str(folder.root / "landmarks.npz")).detected
    assert not detected[3] and not np.allclose(bridge_gaps(init, detected).r[3], init.r[3], atol=1e-6)
    np.testing.assert_allclose(folder.read_frame(3)["r"], init.r[3].numpy(), atol=1e-6)  # step 1's, not bridged
    assert f"'{root}': no face found by 'replay' in 1 of {FRAMES} frames (3); interpolated" in caplog.messages


def test_the_lighting_preview_is_the_first_key_frame_relit_at_its_refined_pose(tmp_path, avatar, clip_dir):
    root, marks = clip_dir
    adapt_video_lighting(root, avatar, tmp_path / "job", TrackOptions(key_frames=2, write_preview=False),
                         runtime=Runtime(landmark_detector=ReplayDetector(marks)))
    folder = JobFolder(tmp_path / "job")
    refined, data = output.load_params(folder.root / "key_poses.npz", "cpu")
    keys = data["rows"].tolist()
    scene = FaceScene(avatar, torch.as_tensor(np.asarray(folder.read_manifest().K)), 96, 96)
    lighting = lighting_store.read_job(folder).video_lighting(avatar, scene.renderer)
    frames = torch.from_numpy(read_clip(root, 0, None, 1).frames)
    with torch.no_grad():
        expected = preview_png(scene, frames[keys[0]], refined.select([0]), lighting_at(lighting, [keys[0]]))
        unlit = preview_png(scene, frames[keys[0]], refined.select([0]), None)

    def decode(png: bytes) -> np.ndarray:
        return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED).astype(int)

    stored = decode((folder.root / "lighting" / "preview.png").read_bytes())
    assert np.abs(stored - decode(expected)).max() <= 1  # PNG of the same render, up to a rounding step
    assert np.abs(stored - decode(unlit)).max() > 1
