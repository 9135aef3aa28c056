"""Job registry across engine restarts: finished jobs remembered, removed folders and the oldest forgotten."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from dlatrack_engine.server.jobqueue import JobManager
from dlatrack_engine.wire.jobfolder import JobFolder


def _finished_job(state_dir: Path, job_id: str, age_s: float) -> Path:
    """A completed job as an earlier engine left it: folder + manifest, and a registry entry `age_s` old."""
    root = state_dir / "out" / job_id
    JobFolder.create(root, job_id, "track", options={}).update_manifest(state="completed", summary={"frames": 3})
    entry = state_dir / "jobs" / f"{job_id}.json"
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.write_text(json.dumps({"job_id": job_id, "kind": "track", "params": {}, "folder": str(root)}))
    stamp = 1_700_000_000 - age_s
    os.utime(entry, (stamp, stamp))
    return root


def test_restart_lists_finished_jobs_and_forgets_removed_folders(tmp_path: Path) -> None:
    kept = _finished_job(tmp_path, "kept", age_s=10)
    removed = _finished_job(tmp_path, "removed", age_s=20)
    shutil.rmtree(removed)
    manager = JobManager(tmp_path, runners={}, engine_version="test")
    assert manager.resume_interrupted() == []
    jobs = {job["job_id"]: job for job in manager.jobs()}
    assert set(jobs) == {"kept"} and jobs["kept"]["state"] == "completed"
    assert not (tmp_path / "jobs" / "removed.json").exists()
    assert (tmp_path / "jobs" / "kept.json").exists() and kept.exists()


def test_restart_keeps_only_the_newest_finished_jobs_but_never_deletes_their_folders(tmp_path: Path) -> None:
    folders = {f"job{i}": _finished_job(tmp_path, f"job{i}", age_s=100 - i) for i in range(5)}  # job4 newest
    manager = JobManager(tmp_path, runners={}, engine_version="test", max_finished=2)
    manager.resume_interrupted()
    assert sorted(job["job_id"] for job in manager.jobs()) == ["job3", "job4"]
    assert sorted(p.stem for p in (tmp_path / "jobs").glob("*.json")) == ["job3", "job4"]
    assert all(folder.exists() for folder in folders.values())
    again = JobManager(tmp_path, runners={}, engine_version="test", max_finished=2)
    again.resume_interrupted()
    assert sorted(job["job_id"] for job in again.jobs()) == ["job3", "job4"]


def test_a_queued_job_records_its_request_once(tmp_path: Path) -> None:
    """The request goes to the registry; the manifest's `options` are left to the pipeline (TrackOptions)."""
    manager = JobManager(tmp_path, runners={"track": lambda ctx: None}, engine_version="test")
    params = {"avatar_id": "av_1", "video": "/clips/a.mp4", "options": {"key_frames": 2}}
    job = manager.submit("track", params, folder=tmp_path / "out")
    assert JobFolder(job.folder).read_manifest().options == {}
    entry = json.loads((tmp_path / "jobs" / f"{job.job_id}.json").read_text())
    assert entry["params"] == params
