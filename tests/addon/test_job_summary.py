"""The sidebar's view of a finished job (io/job_summary.py): PSNR, frames where the face was lost, preview."""

from __future__ import annotations

from blender_addon.io.job_summary import JobSummary, cached_summary
from blender_addon.io.wire.jobfolder import JobFolder


def _job(tmp_path, **fields) -> JobFolder:
    folder = JobFolder.create(tmp_path / "job", "abc", "track")
    folder.update_manifest(frames=[4, 5, 6], landmark_failed_frames=[5], **fields)
    return folder


def test_preview_metrics_and_file(tmp_path):
    folder = _job(tmp_path, metrics={"preview": {"file": "preview.mp4", "psnr": 29.5, "lost_frames": [5]}})
    assert JobSummary.from_folder(folder.root) == JobSummary(29.5, (5,), None, 4)  # no file yet
    (folder.root / "preview.mp4").write_bytes(b"mp4")
    summary = cached_summary(str(folder.root))
    assert summary.preview == folder.root / "preview.mp4" and summary.psnr == 29.5


def test_eval_psnr_without_a_preview_and_no_job(tmp_path):
    folder = _job(tmp_path, metrics={"eval": {"psnr": 21.0}})
    assert JobSummary.from_folder(folder.root) == JobSummary(21.0, (5,), None, 4)
    assert JobSummary.from_folder(tmp_path / "nothing") is None and cached_summary(str(tmp_path / "x")) is None
