"""What a clip's job folder already holds, read on the driver so that a rerun skips finished jobs without
starting a task (which would load the avatar and rewrite preview.mp4 for nothing)."""

from __future__ import annotations

from pathlib import Path

from dlatrack_engine.batch.table import ClipResult
from dlatrack_engine.fit.pipeline import TrackOptions
from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError


def finished_row(clip: Path, job_dir: Path, options: TrackOptions, avatar_name: str) -> ClipResult | None:
    """The row of a job folder that holds this exact request, fully tracked and evaluated; else None (run
    it: a new folder is tracked, an interrupted one resumes, one of another request fails with its error)."""
    folder = JobFolder(job_dir)
    if not folder.exists():
        return None
    try:
        manifest = folder.read_manifest()
        done = set(folder.frames_done())
    except (JobFolderError, OSError):
        return None  # the task reports it, with the pipeline's own message
    if manifest.pipeline_fingerprint != options.fingerprint(clip, avatar_name):
        return None
    frames = manifest.frames
    psnr = manifest.metrics.get("eval", {}).get("psnr")
    preview_done = (
        not options.write_preview or (job_dir / "preview.mp4").is_file() or manifest.preview_error is not None
    )
    if "track" not in manifest.stages_done or not done >= set(frames) or psnr is None or not preview_done:
        return None
    return ClipResult(str(clip), job_dir.name, "skipped", frames=len(frames), psnr=float(psnr))
