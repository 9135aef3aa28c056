"""The engine's job queue: one compute job at a time, events fanned out to attached clients, resume.

Every job has a registry record (`<state_dir>/jobs/<id>.json`: kind, parameters, folder) written before it
is queued, and a job folder whose manifest carries its state. On start-up, jobs whose manifest still says
queued/running (the engine was killed) are queued again; their runners skip frames already in the folder.
The registry forgets (never deletes the folders of) jobs whose folder the user removed, and all but the
newest `MAX_FINISHED_JOBS` finished ones, so a long-lived engine state neither grows nor warns forever.
"""

from __future__ import annotations

import json
import logging
import queue
import shutil
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dlatrack_engine.wire.atomic import atomic_write_bytes
from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError
from dlatrack_engine.wire.jobs import Job, JobState

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.1
MAX_FINISHED_JOBS = 200  # finished jobs remembered across restarts (listed by `jobs`, attachable)


class JobError(Exception):
    """A job failed for a reason worth showing the user: `code` + a message naming the problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Subscriber(Protocol):
    def send_event(self, header: dict[str, Any], blobs: Mapping[str, Any] | None = None) -> bool: ...


@dataclass
class JobContext:
    """What a runner gets: its job, folder and parameters, a progress callback and the cancel flag."""

    job: Job
    folder: JobFolder
    params: dict[str, Any]
    manager: JobManager
    resumed: bool = False

    @property
    def cancel(self) -> threading.Event:
        return self.job.cancel_event

    _last_key: tuple[str, int] | None = None
    _last_publish: float = 0.0

    def progress(self, stage: str, frame: int, total: int, loss: float | None = None, message: str = "") -> None:
        """Record progress; publish it when the stage or frame changed, else at most every PROGRESS_INTERVAL_S
        (optimisers report every iteration; a client needs a few updates a second, not thousands)."""
        progress = self.job.update_progress(stage, frame, total, loss, message)
        now = time.monotonic()
        if (stage, frame) == self._last_key and now - self._last_publish < PROGRESS_INTERVAL_S:
            return
        self._last_key, self._last_publish = (stage, frame), now
        self.manager.publish(self.job.job_id, {"kind": "progress", "state": self.job.state.value, **progress.to_dict()})
        self.announce_frames()

    def log(self, message: str) -> None:
        log.info("job %s: %s", self.job.job_id, message)
        self.manager.publish(self.job.job_id, {"kind": "log", "level": "info", "message": message})

    def announce_frames(self) -> None:
        self.manager.announce_frames(self.job.job_id)


Runner = Callable[[JobContext], Mapping[str, Any] | None]


@dataclass
class JobRecord:
    job: Job
    folder: JobFolder
    params: dict[str, Any]
    subscribers: list[Subscriber] = field(default_factory=list)
    announced: set[int] = field(default_factory=set)
    resumed: bool = False


class _JobLogForwarder(logging.Handler):
    """Forwards log records emitted on the worker thread during a job (the pipeline's own logging) to that
    job's clients as `log` events. The server's own records are not forwarded: they are not about the job."""

    def __init__(self, manager: JobManager) -> None:
        super().__init__(logging.INFO)
        self.manager = manager
        self._busy = threading.local()

    def emit(self, record: logging.LogRecord) -> None:
        job_id = self.manager.current
        if (
            job_id is None
            or threading.current_thread() is not self.manager._worker
            or record.name.startswith("dlatrack_engine.server")
            or getattr(self._busy, "active", False)
        ):
            return
        self._busy.active = True
        try:
            message = {
                "kind": "log",
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage()[:2000],
            }
            self.manager.publish(job_id, message)
        except Exception:  # logging must never break the job
            self.handleError(record)
        finally:
            self._busy.active = False


class JobManager:
    """Owns all jobs of one engine. Thread-safe; `start()` launches the single worker thread."""

    def __init__(
        self, state_dir: Path, runners: Mapping[str, Runner], engine_version: str, max_finished: int = MAX_FINISHED_JOBS
    ) -> None:
        self.max_finished = max_finished
        self.registry_dir = state_dir / "jobs"
        self.registry_dir.mkdir(parents=True, exist_ok=True)
        self.default_root = state_dir / "jobs"
        self.runners = dict(runners)
        self.engine_version = engine_version
        self._records: dict[str, JobRecord] = {}
        self._lock = threading.RLock()
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._work, name="dlatrack-job-worker", daemon=True)
        self.current: str | None = None

    # -- submission ----------------------------------------------------------------------------------------
    def submit(
        self,
        kind: str,
        params: dict[str, Any],
        folder: Path | None = None,
        subscriber: Subscriber | None = None,
        job_id: str | None = None,
    ) -> Job:
        if kind not in self.runners:
            raise JobError("unknown_job_kind", f"job kind '{kind}' is not one of {sorted(self.runners)}")
        job = Job(kind=kind, params=params) if job_id is None else Job(kind=kind, params=params, job_id=job_id)
        root = folder if folder is not None else self.default_root / job.job_id
        try:
            # The request stays in the registry (`params`); the manifest's `options` are the pipeline's own.
            job_folder = JobFolder.create(root, job.job_id, kind, engine_version=self.engine_version)
        except (OSError, JobFolderError) as exc:
            raise JobError("bad_output_folder", f"output folder {root}: {exc}") from exc
        job.folder = str(root)
        record = JobRecord(job, job_folder, params)
        self._register(record)
        if subscriber is not None:
            record.subscribers.append(subscriber)
        self._queue.put(job.job_id)
        log.info("queued job %s (%s) in %s", job.job_id, kind, root)
        return job

    def _register(self, record: JobRecord) -> None:
        entry = {
            "job_id": record.job.job_id,
            "kind": record.job.kind,
            "params": record.params,
            "folder": record.job.folder,
        }
        atomic_write_bytes(self.registry_dir / f"{record.job.job_id}.json", json.dumps(entry).encode("utf-8"))
        record.job.add_listener(self._on_transition)
        with self._lock:
            self._records[record.job.job_id] = record

    def _on_transition(self, job: Job, old: JobState, new: JobState) -> None:
        record = self._records.get(job.job_id)
        if record is None:
            return
        fields: dict[str, Any] = {"state": new.value}
        if new is JobState.FAILED:
            fields["error"] = job.error
        if new is JobState.COMPLETED:
            fields["summary"] = job.summary
        try:
            record.folder.update_manifest(**fields)
        except (OSError, JobFolderError) as exc:
            log.error("job %s: could not record state %s in its manifest: %s", job.job_id, new.value, exc)
        if new is not JobState.CANCELLED or old is not JobState.QUEUED:
            self.publish(job.job_id, {"kind": "progress", "state": new.value, **job.progress.to_dict()})
        if new.terminal:
            if record.params.get("uploaded"):  # the staged upload is no longer needed
                shutil.rmtree(Path(record.params["video"]).parent, ignore_errors=True)
            if job.error:
                self.publish(job.job_id, {"kind": "error", "error": job.error})
            self.publish(job.job_id, {"kind": "done", "state": new.value, "summary": job.summary, "error": job.error})

    # -- lookup ----------------------------------------------------------------------------------------
    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            record = self._records.get(job_id)
        if record is None:
            raise JobError("job_not_found", f"no job with id '{job_id}' on this engine")
        return record

    def attach(self, job_id: str, subscriber: Subscriber) -> JobRecord:
        record = self.get(job_id)
        with self._lock:
            if subscriber not in record.subscribers:
                record.subscribers.append(subscriber)
        return record

    def detach(self, subscriber: Subscriber) -> None:
        """A client went away: its jobs keep running, they just stop streaming to it."""
        with self._lock:
            for record in self._records.values():
                if subscriber in record.subscribers:
                    record.subscribers.remove(subscriber)

    def cancel(self, job_id: str) -> Job:
        record = self.get(job_id)
        record.job.request_cancel()
        return record.job

    def jobs(self) -> list[dict[str, Any]]:
        with self._lock:  # lock order is job -> manager (listeners publish), so never to_dict() under ours
            records = list(self._records.values())
        return [r.job.to_dict() for r in records]

    def status(self, job_id: str) -> dict[str, Any]:
        record = self.get(job_id)
        data = record.job.to_dict()
        data["frames_done"] = len(record.folder.frames_done())
        return data

    # -- events ----------------------------------------------------------------------------------------
    def publish(self, job_id: str, header: dict[str, Any], blobs: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            record = self._records.get(job_id)
            subscribers = list(record.subscribers) if record else []
        full = {"type": "event", "job_id": job_id, **header}
        for subscriber in subscribers:
            if not subscriber.send_event(full, blobs):
                self.detach(subscriber)

    def announce_frames(self, job_id: str) -> None:
        """Send a `frame` event for every frame file that appeared since the last call (with its arrays)."""
        record = self.get(job_id)
        new = [i for i in record.folder.frames_done() if i not in record.announced]
        for index in new:
            record.announced.add(index)
            blobs: dict[str, Any] = {}
            if record.params.get("stream_results", True) and record.subscribers:
                try:
                    arrays = record.folder.read_frame(index, track=record.job.kind in ("track", "adapt"))
                    blobs = {k: v for k, v in arrays.items() if isinstance(v, np.ndarray) and v.dtype.kind in "fiu"}
                except JobFolderError as exc:
                    log.warning("job %s: frame %d unreadable for streaming: %s", job_id, index, exc)
                if record.params.get("stream_textures"):
                    for kind in ("full", "relit"):
                        path = record.folder.texture_path(kind, index)
                        try:
                            if record.folder.written(path):
                                blobs[f"texture_{kind}"] = record.folder.read_file(path)
                        except (OSError, JobFolderError) as exc:
                            log.warning("job %s: texture %s not streamed: %s", job_id, path, exc)
            self.publish(job_id, {"kind": "frame", "frame": index}, blobs)

    # -- worker --------------------------------------------------------------------------------------------
    def start(self) -> None:
        self._log_forwarder = _JobLogForwarder(self)
        logging.getLogger("dlatrack_engine").addHandler(self._log_forwarder)
        self._worker.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Interrupt the running job so that it stays resumable (its manifest goes back to queued)."""
        self._stopping.set()
        with self._lock:
            current = self._records.get(self.current) if self.current else None
        if current is not None:
            current.job.cancel_event.set()
        self._queue.put(None)
        if self._worker.is_alive():
            self._worker.join(timeout)
        if hasattr(self, "_log_forwarder"):
            logging.getLogger("dlatrack_engine").removeHandler(self._log_forwarder)

    def _work(self) -> None:
        while not self._stopping.is_set():
            job_id = self._queue.get()
            if job_id is None:
                break
            record = self.get(job_id)
            if record.job.state is not JobState.QUEUED:
                continue  # cancelled while queued
            with self._lock:
                self.current = job_id
            try:
                self._run(record)
            finally:
                with self._lock:
                    self.current = None

    def _run(self, record: JobRecord) -> None:
        job = record.job
        record.announced.update(record.folder.frames_done())  # announced before a restart: the folder has them
        job.start()
        context = JobContext(job, record.folder, record.params, self, record.resumed)
        try:
            summary = self.runners[job.kind](context)
        except JobError as exc:
            summary, failure = None, (exc.code, exc.message)
        except Exception as exc:  # a bug or an unexpected library error must not kill the worker
            log.exception("job %s (%s) crashed", job.job_id, job.kind)
            summary, failure = None, ("internal_error", f"{type(exc).__name__}: {exc}")
        else:
            failure = None
        self.announce_frames(job.job_id)
        if self._stopping.is_set() and job.cancel_event.is_set() and job.state is JobState.RUNNING:
            record.folder.update_manifest(state=JobState.QUEUED.value, interrupted=True)
            log.info("job %s interrupted by shutdown; it resumes on the next start", job.job_id)
        elif job.cancel_event.is_set():
            if job.state is JobState.RUNNING:
                job.request_cancel()
            job.mark_cancelled()
        elif failure is not None:
            job.fail(*failure)
        else:
            job.complete(summary)

    # -- resume ----------------------------------------------------------------------------------------
    def resume_interrupted(self) -> list[str]:
        """Load the registry; re-queue jobs a killed engine left queued/running; remember finished ones."""
        resumed: list[str] = []
        finished: list[tuple[Path, str]] = []  # oldest first
        for path in sorted(self.registry_dir.glob("*.json"), key=lambda p: p.stat().st_mtime):
            try:
                entry = json.loads(path.read_text(encoding="utf-8"))
                folder = JobFolder(entry["folder"])
                if not folder.root.exists():
                    log.info("forgetting job %s: its folder %s was removed", entry.get("job_id"), folder.root)
                    path.unlink(missing_ok=True)
                    continue
                manifest = folder.read_manifest()
                job = Job(kind=entry["kind"], params=entry["params"], job_id=entry["job_id"])
            except (OSError, KeyError, ValueError, JobFolderError) as exc:
                log.warning("ignoring job registry entry %s: %s", path, exc)
                continue
            job.folder = entry["folder"]
            state = JobState(manifest.state) if manifest.state in JobState._value2member_map_ else None
            record = JobRecord(job, folder, entry["params"], resumed=True)
            if state in (JobState.QUEUED, JobState.RUNNING) and job.kind in self.runners:
                with self._lock:
                    self._records[job.job_id] = record
                job.add_listener(self._on_transition)
                folder.update_manifest(state=JobState.QUEUED.value)
                partial = folder.remove_partial_writes()
                if partial:
                    log.info("job %s: removed %d partial file(s) left by the killed engine", job.job_id, partial)
                folder.verify_files()  # what does not match its record is recomputed, not trusted
                self._queue.put(job.job_id)
                resumed.append(job.job_id)
                log.info(
                    "resuming job %s (%s): %d frames already done", job.job_id, job.kind, len(folder.frames_done())
                )
            else:
                job.state = JobState.CANCELLED if state in (JobState.CANCELLING, None) else state
                job.summary = manifest.summary or {}
                job.error = manifest.error
                with self._lock:
                    self._records[job.job_id] = record
                finished.append((path, job.job_id))
        self._forget_oldest(finished)
        return resumed

    def _forget_oldest(self, finished: list[tuple[Path, str]]) -> None:
        """Drop the registry entries (not the folders) of all but the newest `max_finished` finished jobs."""
        excess = finished[: max(0, len(finished) - self.max_finished)]
        for path, job_id in excess:
            path.unlink(missing_ok=True)
            with self._lock:
                self._records.pop(job_id, None)
        if excess:
            log.info("job registry: forgot the %d oldest finished jobs (their folders are kept)", len(excess))
