"""A track job seen from Blender, without bpy: submit, pump events, decide when frames can be written.

The socket reader thread of the client puts event headers on a queue; `pump()` runs on Blender's main
thread (from a `bpy.app.timers` callback / modal timer in the UI, from a plain loop in `batch.py` where
timers do not run) and drains that queue without blocking; the requests a pump makes (the periodic
`job_status`, `cancel`) go out on short-lived threads and their replies come back through the same queue,
so a slow or frozen engine never freezes Blender. Job state is mirrored with the engine's own
state machine (`wire.jobs`), so the UI can only show states the engine can be in. Frame data itself is
read from the job folder, whose files are atomic: an event only says "look again".
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .wire.jobs import Job, JobState

log = logging.getLogger(__name__)


class EngineLike(Protocol):
    """The part of `io.client.EngineClient` a session uses."""

    def track(
        self, video_path: str, avatar_id: str, options: Mapping[str, Any] | None = ..., out_dir: str | None = ...
    ) -> str: ...
    def cancel(self, job_id: str) -> dict: ...
    def job_status(self, job_id: str) -> dict: ...
    def events(self) -> queue.Queue: ...


@dataclass
class PumpReport:
    """What the UI shows after one pump: state, progress fraction, a one-line status and new frames."""

    state: JobState
    fraction: float
    text: str
    frames_written: int
    finished: bool
    error: str | None = None
    warnings: tuple[str, ...] = ()  # the job's warnings since the last report (e.g. several faces in view)


def _header(event: Any) -> Mapping[str, Any] | None:
    """Events arrive as header dicts or protocol `Message`s; a `None` means the connection ended."""
    if event is None:
        return None
    return getattr(event, "header", event)


class TrackSession:
    """Mirror of one engine job; `write_frames()` is called (main thread) whenever frames may be new."""

    def __init__(self, client: EngineLike, job_record: Mapping[str, Any], write_frames: Callable[[], int],
                 status_interval_s: float = 2.0) -> None:  # fmt: skip
        self.client = client
        self.job = Job.from_dict({**job_record, "kind": job_record.get("kind", "track")})
        self.folder = job_record.get("folder")
        self.write_frames = write_frames
        self.frames_written = 0
        self.status_interval_s = status_interval_s
        self._last_status = time.monotonic()
        self._events = client.events()
        self._connection_lost: str | None = None
        self._status_in_flight = False
        self.announced: set[int] = set()  # frames the engine said are done (for a remote-folder mirror)
        self._warnings: list[str] = []  # warning-level job log lines not yet reported

    @property
    def job_id(self) -> str:
        return self.job.job_id

    @property
    def engine_lost(self) -> str | None:
        """Why the connection to the engine ended (None while it is up)."""
        return self._connection_lost

    def cancel(self, wait: bool = False) -> None:
        """Ask the engine to stop; the job ends as cancelled (or completed) on a later pump. The request goes
        out on a thread unless `wait` (batch mode): ESC must not freeze Blender while the engine answers."""
        if self.job.terminal or self._connection_lost:
            return
        self.job.apply_status({"state": JobState.CANCELLING.value})  # shown at once; the engine's reply follows
        if not wait:
            self._request_in_background("cancel", lambda: self.client.cancel(self.job_id))
            return
        try:
            self.job.apply_status(self.client.cancel(self.job_id))
        except (OSError, ConnectionError) as exc:
            self._lost(f"engine unreachable while cancelling: {exc}")

    def _request_in_background(self, what: str, request: Callable[[], Mapping[str, Any]]) -> None:
        """Send a request from a short-lived thread; the reply comes back through the event queue as a
        `status` event (a lost connection as `connection_lost`), so a pump never waits for the engine."""

        def run() -> None:
            try:
                reply = request()
            except (OSError, ConnectionError) as exc:
                self._events.put({"kind": "connection_lost", "message": f"engine unreachable ({what}): {exc}"})
            except RuntimeError as exc:  # the engine refused it (EngineError names why); the job goes on
                log.warning("engine %s for job %s failed: %s", what, self.job_id, exc)
            else:
                self._events.put({"kind": "status", "job_id": self.job_id, "status": dict(reply)})
            finally:
                if what == "job_status":
                    self._status_in_flight = False

        threading.Thread(target=run, name=f"dlatrack-{what}", daemon=True).start()

    def _lost(self, message: str) -> None:
        self._connection_lost = message
        if not self.job.terminal:
            self.job.apply_status(
                {"state": JobState.FAILED.value, "error": {"code": "engine_lost", "message": message}}
            )

    def _drain(self, max_events: int) -> bool:
        """Apply queued events of this job; True when any of them may mean new frames."""
        touched = False
        for _ in range(max_events):
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                break
            header = _header(event)
            if header is None or header.get("kind") == "connection_lost":
                self._lost(str(header.get("message")) if header else "engine connection closed")
                touched = True
                break
            if header.get("job_id") not in (None, self.job_id):
                continue
            kind = header.get("kind")
            if kind == "progress":
                self.job.apply_status({"state": header.get("state"), "progress": header})
            elif kind in ("done", "error"):
                self.job.apply_status(header)
                touched = True
            elif kind == "status":  # a reply to a request sent in the background
                self.job.apply_status(header["status"])
                touched = True
            elif kind == "frame":
                touched = True
                if isinstance(header.get("frame"), int):
                    self.announced.add(header["frame"])
            elif kind == "log":
                if header.get("level") in ("warning", "error", "critical"):
                    self._warnings.append(str(header.get("message")))
                    log.warning("engine job %s: %s", self.job_id, header.get("message"))
                else:
                    log.info("engine job %s: %s", self.job_id, header.get("message"))
        return touched

    def _poll_status(self) -> None:
        """Events can be missed (reconnect, full queue); a periodic job_status keeps the mirror honest."""
        if time.monotonic() - self._last_status < self.status_interval_s or self._connection_lost:
            return
        if self._status_in_flight:  # an engine slow to answer gets one question at a time
            return
        self._last_status = time.monotonic()
        self._status_in_flight = True
        self._request_in_background("job_status", lambda: self.client.job_status(self.job_id))

    def pump(self, max_events: int = 256) -> PumpReport:
        """Drain events, write what finished, report. Never blocks on the socket."""
        touched = self._drain(max_events)
        self._poll_status()
        new = 0
        if touched or self.job.terminal or self.job.state is JobState.RUNNING:
            new = self.write_frames()  # frames already on disk stay, whatever happened to the engine
            self.frames_written += new
        return self.report(new)

    def report(self, new: int = 0) -> PumpReport:
        progress = self.job.progress
        error = None
        if self.job.state is JobState.FAILED:
            error = (self.job.error or {}).get("message") or self._connection_lost or "engine job failed"
        stage = progress.stage or self.job.state.value
        text = f"{stage} {progress.frame}/{progress.total}" if progress.total else stage
        if progress.eta_s:
            text += f" (~{progress.eta_s:.0f} s left)"
        if self.job.state is JobState.CANCELLING and stage != "cancelling":  # until the engine's next check
            text = f"cancelling ({text})"
        warnings, self._warnings = tuple(self._warnings), []
        return PumpReport(self.job.state, progress.fraction, text, new, self.job.terminal, error, warnings)

    def run_blocking(self, poll_s: float = 0.2, on_report: Callable[[PumpReport], None] | None = None,
                     timeout_s: float | None = None) -> PumpReport:  # fmt: skip
        """Pump until the job ends (headless batch mode, where timers never fire)."""
        start = time.monotonic()
        while True:
            report = self.pump()
            if on_report is not None:
                on_report(report)
            if report.finished:
                # One more pass: the last frame files may land just before the `done` event.
                extra = self.write_frames()
                self.frames_written += extra
                return self.report(extra)
            if timeout_s is not None and time.monotonic() - start > timeout_s:
                self.cancel(wait=True)
                raise TimeoutError(f"job {self.job_id}: not finished after {timeout_s:.0f} s (cancelled)")
            time.sleep(poll_s)
