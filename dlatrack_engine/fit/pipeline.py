"""The whole registration of a video (docs/method.md) into a job folder: landmarks -> step 1 -> step 2 ->
step 3 -> per-frame results, resumable.

Each stage's result is stored atomically in the job folder before the next starts, and step 3 writes
every frame as soon as its batch is solved, so rerunning with the same `out_dir` and options skips finished
stages and frames (a different request into a used folder is an error, not a silent mix).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlatrack_engine import __version__
from dlatrack_engine.device import pick_device
from dlatrack_engine.fit import lighting_sequence, lighting_store, output
from dlatrack_engine.fit.camera_setup import resolve_intrinsics
from dlatrack_engine.fit.key_poses import spread_key_corrections
from dlatrack_engine.fit.lighting_preview import preview_png
from dlatrack_engine.fit.optim import Cancelled
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.propagation import bridge_gaps
from dlatrack_engine.fit.runtime import Runtime
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.step1 import fit_landmarks
from dlatrack_engine.fit.step2 import refine_iterations
from dlatrack_engine.fit.step3 import track_batch
from dlatrack_engine.fit.track_options import TrackOptions
from dlatrack_engine.fit.video_lighting import VideoLighting, lighting_at
from dlatrack_engine.landmarks import LandmarkTrack, create_detector, detect_clip
from dlatrack_engine.landmarks.outliers import drop_outliers
from dlatrack_engine.video import read_clip
from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError

log = logging.getLogger(__name__)
STAGES = ("landmarks", "init", "adapt", "track", "write", "preview")


@dataclass
class ProgressEvent:
    stage: str  # one of STAGES
    frame: int
    total: int
    loss: float | None = None
    message: str = ""


@dataclass
class JobSummary:
    out_dir: str
    frames: int
    computed_frames: int
    skipped_frames: int
    stages_done: list[str]
    seconds: dict[str, float]
    losses: dict[str, float]
    key_frames: list[int]
    cancelled: bool = False


class _Job:
    """State shared by the stages of one run."""

    def __init__(self, video: Path, avatar, out_dir: Path, options: TrackOptions,
                 progress: Callable[[ProgressEvent], None] | None, cancel: threading.Event | None,
                 runtime: Runtime) -> None:
        self.options, self.avatar, self.runtime = options, avatar, runtime
        self.schedule = options.schedule()
        self.progress_fn, self.cancel = progress, cancel
        self.device = avatar.device if runtime.device is None else pick_device(runtime.device)
        if self.device != avatar.device:
            raise ValueError(f"avatar is on {avatar.device} but runtime.device is {self.device}; load it there")
        # Steps 1-3 run at the schedule's working size; results are 3-D, so they do not depend on it. Each
        # frame is scaled as it is decoded (INTER_AREA), so the full-size clip is never held in memory.
        self.clip = read_clip(video, options.start, options.stop, options.stride,
                              work_size=self.schedule.work_size)
        width, height = self.clip.source_size
        K, k_source = resolve_intrinsics(video, width, height, options.focal)
        self.scale = self.clip.scale
        work_w, work_h = self.clip.size
        self.frames = torch.from_numpy(np.ascontiguousarray(self.clip.frames))  # CPU; batches move to the device
        self.times = torch.as_tensor(self.clip.indices, dtype=torch.float64)  # video frame numbers, for the priors
        work_K = np.diag([self.scale, self.scale, 1.0]) @ K  # pixel corners at 0: u' = s u
        self.scene = FaceScene(avatar, torch.as_tensor(work_K), work_w, work_h)
        self.seconds: dict[str, float] = {}
        self.lighting: VideoLighting | None = None
        self.computed = self.skipped = 0
        self.reused = None if options.lighting_from is None else lighting_store.read_reusable(
            options.lighting_from, avatar, options.lighting, frame_count=len(self.frames))  # refused before any work
        self.folder = self._open_folder(Path(out_dir), video, K, k_source)

    def _open_folder(self, out_dir: Path, video: Path, K: np.ndarray, k_source: str) -> JobFolder:
        name = str(self.avatar.config.get("name", "avatar"))
        fingerprint = self.options.fingerprint(video, name)
        folder = JobFolder(out_dir)
        existed = folder.exists()
        # The pipeline keeps `state` in a manifest it created (job_id = its fingerprint), on a resume too; an
        # engine job's manifest, created by the job queue under the queue's own id, has its state kept there.
        self.owns_manifest = not existed or folder.read_manifest().job_id == fingerprint
        if self.owns_manifest:
            folder = JobFolder.create(out_dir, fingerprint, "track", engine_version=__version__)
        previous = folder.read_manifest().pipeline_fingerprint
        if previous and previous != fingerprint:
            raise JobFolderError(f"{folder.manifest_path}: holds results of another request (fingerprint {previous}, "
                                 f"this one {fingerprint}); choose an empty output folder")
        if existed:
            folder.verify_files()  # a rerun recomputes what does not match what it wrote
        folder.update_manifest(
            pipeline_fingerprint=fingerprint, options=self.options.to_dict(), avatar=name, video=str(video),
            frames=self.clip.indices, fps=self.clip.fps, size=list(self.clip.source_size), K=K.tolist(),
            K_source=k_source, work_size=[self.scene.width, self.scene.height], schedule=self.schedule.to_dict(),
            **({"state": "running"} if self.owns_manifest else {}))
        return folder

    def emit(self, stage: str, frame: int, total: int, loss: float | None = None, message: str = "") -> None:
        if self.progress_fn is not None:
            self.progress_fn(ProgressEvent(stage, frame, total, loss, message))

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled("cancelled")

    # -- stages ------------------------------------------------------------------------------------------
    def landmarks(self) -> LandmarkTrack:
        path = self.folder.root / "landmarks.npz"
        if self.folder.trusted(path):
            track = LandmarkTrack.load(str(path))
            if track.points.shape != (len(self.frames), 68, 2):
                raise JobFolderError(f"{path}: field 'points' has shape {track.points.shape}, expected "
                                     f"({len(self.frames)}, 68, 2) for the {len(self.frames)} selected frames")
            return track
        start = time.monotonic()
        detector = self.runtime.landmark_detector or create_detector(
            self.options.detector, str(self.device), self.options.landmark_weights_dir)
        n = len(self.frames)

        def tick(done: int, total: int) -> None:
            self.check_cancel()
            self.emit("landmarks", done, total)

        track = detect_clip(detector, self.clip.source_frames(), str(self.clip.path), tick, count=n)
        self.folder.write_file(path, track.to_bytes())
        self.folder.update_manifest(landmark_detector=track.detector, landmark_failed_frames=[
            self.clip.indices[i] for i in track.failed_frames])
        self.folder.mark_stage_done("landmarks")
        self.seconds["landmarks"] = time.monotonic() - start
        log.info("landmarks: %d frames, %d failed", n, len(track.failed_frames))
        return track

    def drop_outlier_landmarks(self, marks: LandmarkTrack) -> LandmarkTrack:
        """Detections off the head's path in time count as missed frames (landmarks/outliers.py); landmarks.npz
        keeps what the detector said, and the choice is recomputed the same way on a resume."""
        kept, dropped = drop_outliers(marks, self.times.cpu().numpy())  # logs the frames it drops
        if dropped:
            self.folder.update_manifest(landmark_dropped_frames=sorted(self.clip.indices[i] for i in dropped))
        return kept

    def init(self, marks: LandmarkTrack):
        source = self.scene.use_landmarks_of(marks.detector if self.options.calibrated_landmarks else None)
        log.info("step 1: landmarks from %s, mesh landmarks ℓ_i: %s", marks.detector, source)
        path = self.folder.root / "init.npz"
        if self.folder.trusted(path):
            params, data = output.load_params(path, self.device)
            return params, torch.as_tensor(data["loss"])
        start = time.monotonic()
        self.folder.update_manifest(landmark_embedding=source)
        points = torch.as_tensor(marks.points) * self.scale  # detected at full size, fitted at working size
        weights = torch.as_tensor(marks.confidence)
        weights = torch.where(torch.as_tensor(marks.detected)[:, None], weights.clamp_min(0.05), 0.2)
        weights[:, :17] *= self.schedule.step1.jaw_weight
        total = self.schedule.step1.iterations
        params, loss = fit_landmarks(self.scene, points, weights, self.schedule,
                                     cancel=self.cancel, on_iteration=lambda i, v: self.emit("init", i, total, v),
                                     times=self.times)
        output.save_params(self.folder, path, params, loss=loss.cpu().numpy())
        self.folder.mark_stage_done("init")
        self.seconds["init"] = time.monotonic() - start
        return params, loss

    def adapt(self, init: FrameParams) -> tuple[VideoLighting | None, list[int], FrameParams]:
        """Step 2 (Algorithm 1) on K key frames, or the reused lighting copied in and l and the key poses refitted
        with it; -> lighting, key rows, and the poses step 3 starts from (step 1's, corrected by the refined
        p_k: fit/key_poses.py). A resumed job reads them back, so it starts step 3 from the same poses."""
        if self.options.lighting == "none":
            return None, [], init
        stored = lighting_store.read_job(self.folder)
        poses_path = self.folder.root / "key_poses.npz"
        if stored is not None and "adapt" in self.folder.read_manifest().stages_done:
            lighting = stored.video_lighting(self.avatar, self.scene.renderer)
            if not self.folder.trusted(poses_path):  # a job from before p_k were refined (or saved on reuse)
                return lighting, [] if stored.info.reused_from else list(stored.info.key_frames), init
            refined, data = output.load_params(poses_path, self.device)
            keys = [int(k) for k in data["rows"]] if "rows" in data else list(stored.info.key_frames)
            return lighting, keys, spread_key_corrections(init, keys, refined)
        start = time.monotonic()
        s2 = self.schedule.step2
        if self.reused is not None:
            total = refine_iterations(self.schedule)
        else:
            total = lighting_sequence.passes(self.schedule, self.options.adapt) * s2.rounds * (
                s2.light_iterations + (s2.model_iterations if self.options.adapt else 0))
        curve: list[float] = []  # the loss at every iteration, for the report's plot

        def tick(stage: str, it: int, value: float) -> None:
            curve.append(float(value))
            self.emit("adapt", len(curve), total, value, stage)

        if self.reused is not None:
            return self._refine_with_reused(init, poses_path, start, tick)
        lighting, keys, refined, history, meta = lighting_sequence.adapt_take(
            self.scene, self.frames, init, self.avatar, self.options, self.schedule, self.cancel, tick)
        if lighting.is_sequence:
            meta["source_frames"] = list(self.clip.indices)
        output.save_params(self.folder, poses_path, refined, rows=np.asarray(keys))
        meta.update({"key_frames": keys, "key_source_frames": [self.clip.indices[k] for k in keys],
                     "losses": history, "iteration_losses": curve, "video": str(self.clip.path)})
        preview = preview_png(self.scene, self.frames[keys[0]], refined.select([0]),
                              lighting_at(lighting, [keys[0]]))  # at its refined pose
        lighting_store.write(lighting_store.job_lighting_root(self.folder), lighting, self.avatar,
                             self.folder.write_file, meta, preview)
        self.folder.mark_stage_done("adapt")
        self.seconds["adapt"] = time.monotonic() - start
        return lighting, keys, spread_key_corrections(init, keys, refined)

    def _refine_with_reused(self, init: FrameParams, poses_path: Path, start: float,
                            tick: Callable[[str, int, float], None]) -> tuple[VideoLighting, list[int], FrameParams]:
        """Step 2 skipped (issue 27): the reused φ is copied in, this take's l and key poses refitted with it
        (lighting_sequence.refine_take); self.seconds["adapt"] is that refinement's cost."""
        lighting = self.reused.video_lighting(self.avatar, self.scene.renderer)
        keys, refined, curve = lighting_sequence.refine_take(self.scene, self.frames, init, lighting, self.options,
                                                             self.schedule, self.cancel, tick)
        output.save_params(self.folder, poses_path, refined, rows=np.asarray(keys))
        info = lighting_store.copy_into(self.reused, lighting_store.job_lighting_root(self.folder),
                                        self.folder.write_file, lighting)
        self.folder.update_manifest(lighting_source={"path": info.reused_from, "files": info.files})
        self.folder.mark_stage_done("adapt")
        self.seconds["adapt"] = time.monotonic() - start
        log.info("step 2 skipped: lighting reused from %s; %d key poses refined with it (loss %.4g -> %.4g)",
                 info.reused_from, len(keys), curve[0] if curve else float("nan"), curve[-1] if curve else float("nan"))
        return lighting, keys, spread_key_corrections(init, keys, refined)

    def track(self, starts: FrameParams, init_loss: torch.Tensor, lighting: VideoLighting | None) -> dict[str, float]:
        """Step 3 over all frames in fixed batches from `starts`; counts go to self.computed / self.skipped as
        they happen (so a cancelled run still reports what it wrote)."""
        n = len(self.frames)
        batch = max(1, self.schedule.step3.batch_size)
        sums = {"landmark": 0.0, "pixel": 0.0, "flow": 0.0}
        start = time.monotonic()
        landmark_only = self.options.steps == "landmarks"
        for first in range(0, n, batch):
            rows = list(range(first, min(first + batch, n)))
            todo = [r for r in rows if not self.folder.has_frame(self.clip.indices[r])]
            self.skipped += len(rows) - len(todo)
            if not todo:
                continue
            self.check_cancel()
            frames = self.frames[rows].to(self.device)
            sub_init = starts.select(rows)
            if landmark_only:
                params, terms = sub_init, None
            else:
                params, terms = track_batch(self.scene, frames, sub_init, lighting_at(lighting, rows), self.schedule,
                                            times=self.times[rows], cancel=self.cancel,
                                            on_iteration=lambda i, v, f=first: self.emit(
                                                "track", f, n, v, f"iteration {i}"))
            output.write_batch(self.folder, self.scene, lighting_at(self.lighting, rows), frames, params, terms,
                               init_loss, rows, todo, self.clip.indices, self.options.write_overlays,
                               self.options.write_textures)
            self.computed += len(todo)
            self.emit("write", first + len(rows), n, None, f"frames {self.clip.indices[rows[0]]}-"
                      f"{self.clip.indices[rows[-1]]}")
            if terms is not None:
                sums["pixel"] += float(terms.pixel.sum())
                sums["flow"] += float(terms.flow.sum())
        sums["landmark"] = float(init_loss.sum())
        self.folder.mark_stage_done("track")
        self.seconds["track"] = time.monotonic() - start
        return {k: v / max(n, 1) for k, v in sums.items()}

    def preview(self) -> None:
        """preview.mp4 from the finished job folder. A preview that cannot be written (no ffmpeg, full disk)
        is a warning: the tracked frames are already safe and the job is still usable."""
        from dlatrack_engine.report.preview import write_preview

        def tick(done: int, total: int) -> None:
            self.check_cancel()
            self.emit("preview", done, total)

        try:
            result = write_preview(self.folder.root, self.avatar, on_frame=tick)
        except Cancelled:
            raise
        except (OSError, RuntimeError, ValueError) as exc:
            log.warning("%s: preview.mp4 not written: %s", self.folder.root, exc)
            self.folder.update_manifest(preview_error=str(exc))
            return
        self.seconds["preview"] = result.seconds


def _run(video, avatar, out_dir, options, progress, cancel, adapt_only: bool, runtime: Runtime | None) -> JobSummary:
    job = _Job(Path(video), avatar, Path(out_dir), options, progress, cancel, runtime or Runtime())
    losses: dict[str, float] = {}
    keys: list[int] = []
    cancelled = False
    try:
        marks = job.drop_outlier_landmarks(job.landmarks())
        init, init_loss = job.init(marks)
        # Frames without landmarks take the head's motion across their gap (fit/propagation.py), for Algorithm 1's
        # key poses and, bridged again from the refined poses around them, for step 3's starts; the step-1-alone
        # baseline keeps step 1's poses.
        job.lighting, keys, starts = job.adapt(bridge_gaps(init, marks.detected))
        starts = init if job.options.steps == "landmarks" else bridge_gaps(starts, marks.detected)
        if not adapt_only:
            losses = job.track(starts, init_loss, job.lighting)
            if options.write_preview:
                job.preview()
    except Cancelled:
        cancelled = True
        log.info("job in '%s' cancelled; rerun to resume", out_dir)
    manifest = job.folder.read_manifest()
    summary = JobSummary(str(out_dir), len(job.frames), job.computed, job.skipped, manifest.stages_done, job.seconds,
                         losses, [job.clip.indices[k] for k in keys], cancelled)
    fields: dict[str, Any] = {"metrics": {**manifest.metrics, "losses": losses, "seconds": job.seconds}}
    if job.owns_manifest:
        fields["state"] = "cancelled" if cancelled else "completed"
    job.folder.update_manifest(**fields)
    return summary


def track_video(video: str | Path, avatar, out_dir: Path, options: TrackOptions,
                progress: Callable[[ProgressEvent], None] | None = None,
                cancel: threading.Event | None = None, runtime: Runtime | None = None) -> JobSummary:
    """Register every selected frame of `video` (steps 1-3) and write the job folder `out_dir`."""
    return _run(video, avatar, out_dir, options, progress, cancel, adapt_only=False, runtime=runtime)


def adapt_video_lighting(video: str | Path, avatar, out_dir: Path, options: TrackOptions,
                         progress: Callable[[ProgressEvent], None] | None = None,
                         cancel: threading.Event | None = None, runtime: Runtime | None = None) -> JobSummary:
    """Steps 1 and 2 only: landmarks, initialisation and the video's adapted lighting (l, G). A lighting adapted
    to be reused on other takes is the paper's static one: per-frame codes would tie it to this take's length."""
    options = dataclasses.replace(options, time_varying_lighting=False)
    return _run(video, avatar, out_dir, options, progress, cancel, adapt_only=True, runtime=runtime)
