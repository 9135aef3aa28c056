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


def test_the_demo_ends_with_where_to_look_and_the_three_figures(tmp_path):
    from dlatrack_engine.demo import result_lines

    (tmp_path / "preview.mp4").write_bytes(b"x")
    text = result_lines(tmp_path / "preview.mp4", tmp_path / "report" / "report.html",
                        {"psnr": 29.21, "vertex_mm": 2.03, "rotation_deg": 1.2}, [3])
    assert str(tmp_path / "preview.mp4") in text and str(tmp_path / "report" / "report.html") in text
    assert "PSNR 29.21 dB" in text and "vertex error 2.0 mm" in text and "rotation error 1.20°" in text
    assert "frames [3]" in text
    assert "vertex" not in result_lines(tmp_path / "none.mp4", tmp_path / "r.html", {"psnr": 20.0}, [])
