"""`dlatrack demo` can be rerun: the last run's job folder is kept aside, not refused or deleted."""

from __future__ import annotations

from dlatrack_engine.demo import keep_previous_job


def test_rerun_keeps_the_last_job_and_replaces_the_one_before(tmp_path):
    job = tmp_path / "job"
    keep_previous_job(job)  # first run: nothing to move
    assert not job.exists() and not (tmp_path / "job.previous").exists()
    for run in ("first", "second"):
        job.mkdir()
        (job / "manifest.json").write_text(run)
        keep_previous_job(job)
        assert not job.exists()
        assert (tmp_path / "job.previous" / "manifest.json").read_text() == run
