"""The registration pipeline on CUDA gives the CPU's result (same code path, every tensor on the device)."""

from __future__ import annotations

import pytest
import torch
from fit_fixtures import TINY, ReplayDetector, gt_params, make_avatar

from dlatrack_engine.fit.pipeline import Runtime, TrackOptions, track_video
from dlatrack_engine.wire.jobfolder import JobFolder


def _read_all(folder: JobFolder) -> dict:
    return {i: folder.read_frame(i) for i in folder.frames_done()}

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_pipeline_on_cuda_matches_cpu(tmp_path, clip_dir, monkeypatch):
    monkeypatch.setattr(TrackOptions, "schedule", lambda self: TINY)
    root, marks = clip_dir
    results = {}
    for device in ("cpu", "cuda"):
        avatar = make_avatar()
        avatar = type(avatar)(avatar.dam, avatar.lighting, avatar.topology_arrays, avatar.config, device)
        runtime = Runtime(device=device, landmark_detector=ReplayDetector(marks))
        track_video(root, avatar, tmp_path / device, TrackOptions(key_frames=3), runtime=runtime)
        results[device] = _read_all(JobFolder(tmp_path / device))
    assert results["cpu"].keys() == results["cuda"].keys() and len(results["cpu"]) == len(gt_params(6).r)
    for index, arrays in results["cpu"].items():
        for key in ("vertices", "head_t", "r"):
            diff = abs(results["cuda"][index][key] - arrays[key]).max()
            assert diff < 2e-3, f"frame {index} {key}: CPU and CUDA differ by {diff}"
