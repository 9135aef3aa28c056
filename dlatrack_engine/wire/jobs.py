"""The job model: queued → running → cancelling → cancelled | completed | failed.

One small, torch-free state machine shared by the engine server (which runs jobs), the add-on's modal
operator and the headless batch script (which mirror a remote job from its status/events). Keeping the
transition table in one place means the UI can never show a state the engine cannot be in.
"""

from __future__ import annotations

import enum
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


class JobState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({JobState.CANCELLED, JobState.COMPLETED, JobState.FAILED})

# A cancelled queued job never ran, so it may go straight to CANCELLED; a running one must pass through
# CANCELLING because its worker only stops at the next frame boundary (and may still complete or fail).
TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED}),
    JobState.RUNNING: frozenset({JobState.CANCELLING, JobState.COMPLETED, JobState.FAILED}),
    JobState.CANCELLING: frozenset({JobState.CANCELLED, JobState.COMPLETED, JobState.FAILED}),
    JobState.CANCELLED: frozenset(),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
}


class InvalidTransition(ValueError):
    """Raised when code asks for a transition the table does not allow (a bug, or a stale mirror)."""


def new_job_id() -> str:
    """Short random id: unique enough for one user's engine, short enough to read in a log line."""
    return uuid.uuid4().hex[:12]


@dataclass
class Progress:
    """Where a job is: stage name, frame within the stage, loss, and an ETA estimated from the stage rate."""

    stage: str = ""
    frame: int = 0
    total: int = 0
    loss: float | None = None
    message: str = ""
    eta_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "frame": self.frame,
            "total": self.total,
            "loss": self.loss,
            "message": self.message,
            "eta_s": self.eta_s,
        }

    @property
    def fraction(self) -> float:
        return min(1.0, self.frame / self.total) if self.total > 0 else 0.0


Listener = Callable[["Job", JobState, JobState], None]


@dataclass
class Job:
    """One unit of work. Thread-safe: the worker advances it while request threads read and cancel it."""

    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    job_id: str = field(default_factory=new_job_id)
    state: JobState = JobState.QUEUED
    progress: Progress = field(default_factory=Progress)
    error: dict[str, str] | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    folder: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self.cancel_event = threading.Event()
        self._listeners: list[Listener] = []
        self._stage_start: tuple[str, float, int] | None = None

    # -- transitions -------------------------------------------------------------------------------------
    def _move(self, new: JobState) -> None:
        with self._lock:
            old = self.state
            if new not in TRANSITIONS[old]:
                raise InvalidTransition(f"job {self.job_id} ({self.kind}): cannot go from {old.value} to {new.value}")
            self.state = new
            if new is JobState.RUNNING:
                self.started = time.time()
            if new.terminal:
                self.finished = time.time()
            # Listeners run under the lock: transitions from different threads (cancel vs. worker) are then
            # observed, and persisted, in the order they happened, and readers see the state once persisted.
            for listener in list(self._listeners):
                listener(self, old, new)

    def start(self) -> None:
        self._move(JobState.RUNNING)

    def request_cancel(self) -> bool:
        """Ask the job to stop. Returns False when it had already finished (nothing to cancel)."""
        with self._lock:
            self.cancel_event.set()
            if self.state is JobState.QUEUED:
                self._move(JobState.CANCELLED)
            elif self.state is JobState.RUNNING:
                self._move(JobState.CANCELLING)
            else:
                return self.state is JobState.CANCELLING
            return True

    def complete(self, summary: Mapping[str, Any] | None = None) -> None:
        with self._lock:
            self.summary = dict(summary or {})
            self._move(JobState.COMPLETED)

    def fail(self, code: str, message: str) -> None:
        with self._lock:
            self.error = {"code": code, "message": message}
            self._move(JobState.FAILED)

    def mark_cancelled(self) -> None:
        """The worker noticed the cancel request and stopped cleanly."""
        self._move(JobState.CANCELLED)

    # -- progress ----------------------------------------------------------------------------------------
    def update_progress(
        self, stage: str, frame: int, total: int, loss: float | None = None, message: str = ""
    ) -> Progress:
        """Record progress; the ETA extrapolates the current stage's frame rate (stages have different costs)."""
        now = time.monotonic()
        with self._lock:
            if self._stage_start is None or self._stage_start[0] != stage or frame < self._stage_start[2]:
                self._stage_start = (stage, now, frame)
            _, t0, f0 = self._stage_start
            eta = None
            if total > 0 and frame > f0 and now > t0:
                eta = (total - frame) * (now - t0) / (frame - f0)
            self.progress = Progress(stage, int(frame), int(total), loss, message, eta)
            return self.progress

    # -- observation -------------------------------------------------------------------------------------
    def add_listener(self, listener: Listener) -> None:
        with self._lock:
            self._listeners.append(listener)

    @property
    def terminal(self) -> bool:
        return self.state.terminal

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "job_id": self.job_id,
                "kind": self.kind,
                "state": self.state.value,
                "progress": self.progress.to_dict(),
                "error": self.error,
                "summary": self.summary,
                "folder": self.folder,
                "created": self.created,
                "started": self.started,
                "finished": self.finished,
            }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """Rebuild a job (e.g. a client-side mirror from `job_status`); unknown keys are ignored."""
        try:
            job = cls(kind=str(data["kind"]), job_id=str(data["job_id"]), state=JobState(data.get("state", "queued")))
        except (KeyError, ValueError) as exc:
            raise ValueError(f"job record {dict(data)!r}: {exc} (expected job_id, kind and a valid state)") from exc
        job.apply_status(data)
        return job

    def apply_status(self, data: Mapping[str, Any]) -> None:
        """Update a mirror from a server status or event header. Any state may follow a stale mirror's state,
        because the mirror can have missed events; a terminal mirror never goes back."""
        with self._lock:
            state = data.get("state")
            if state is not None and not self.state.terminal:
                self.state = JobState(state)
            progress = data.get("progress")
            if isinstance(progress, Mapping):
                known = {k: progress[k] for k in Progress().to_dict() if k in progress}
                self.progress = Progress(**known)
            for key in ("error", "summary", "folder", "started", "finished"):
                if data.get(key) is not None:
                    setattr(self, key, data[key])
