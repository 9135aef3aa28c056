"""Track Video with an engine on another machine, without freezing Blender while the inputs go up.

Uploading a video takes minutes over a real link, so the avatar and video uploads and the `track` request
run on a thread; the modal operator pumps this run like a `TrackRun`, the panel showing the upload's
progress, and once the engine has queued the job this run hands over to the `TrackRun` that mirrors its
results (`tracking.py`). ESC or Cancel during the upload stops it between two chunks: the engine keeps
what it has, and the next Track Video resumes there.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bpy

from ..io.calibration import find_calibration
from ..io.remote import ensure_avatar, submit_track
from ..io.session import PumpReport
from ..io.upload import UploadCancelled
from ..io.wire.jobs import JobState
from .scene import WriteOptions
from .tracking import TrackRun


class _Uploading:
    """The run's session while there is no engine job yet (what the modal operator asks of a session)."""

    job_id = ""
    engine_lost: str | None = None
    frames_written = 0

    def __init__(self, cancel: threading.Event) -> None:
        self._cancel = cancel

    def cancel(self, wait: bool = False) -> None:
        self._cancel.set()


class RemoteTrackRun:
    """Upload the inputs on a thread, then track; `pump()` never waits for the network."""

    def __init__(self, scene: bpy.types.Scene, avatar: bpy.types.Object, client: Any, package: str, video: str,
                 options: Mapping[str, Any], write_options: WriteOptions) -> None:  # fmt: skip
        self.scene_name, self.avatar_name = scene.name, avatar.name
        self.client, self.video, self.write_options = client, video, write_options
        self.calibration = find_calibration(video, options)  # here, so a missing one is reported at once
        self.track: TrackRun | None = None
        self._cancel = threading.Event()
        self._uploading = _Uploading(self._cancel)
        self._sent = (0, 0)
        self._record: dict[str, Any] | None = None
        self._error: BaseException | None = None
        self._done = threading.Event()
        worker = threading.Thread(target=self._submit, args=(package, dict(options)), name="dlatrack-upload")
        worker.daemon = True
        worker.start()

    def _submit(self, package: str, options: dict[str, Any]) -> None:
        try:
            avatar_id = ensure_avatar(self.client, package)
            self._record, _ = submit_track(self.client, self.video, avatar_id, options, self._progress,
                                           self._cancel, self.calibration)  # fmt: skip
        except BaseException as exc:  # reported by pump() on the main thread
            self._error = exc
        finally:
            self._done.set()

    def _progress(self, sent: int, size: int) -> None:
        self._sent = (sent, size)

    @property
    def session(self) -> Any:
        return self.track.session if self.track is not None else self._uploading

    @property
    def folder(self) -> Path:
        """The laptop folder the results go to: the job's mirror once the engine has named the job."""
        if self.track is not None:
            return self.track.folder
        return Path(self.write_options.cache_dir or Path(tempfile.gettempdir()) / "dlatrack")

    def pump(self) -> PumpReport:
        if self.track is not None:
            return self.track.pump()
        if not self._done.is_set():
            sent, size = self._sent
            text = f"uploading {sent / 2**20:.0f}/{size / 2**20:.0f} MiB" if size else "uploading"
            return PumpReport(JobState.QUEUED, sent / size if size else 0.0, text, 0, False)
        if isinstance(self._error, UploadCancelled):
            return PumpReport(JobState.CANCELLED, 0.0, "upload stopped", 0, True)
        if self._error is not None or self._record is None:
            return PumpReport(JobState.FAILED, 0.0, "upload failed", 0, True, f"upload failed: {self._error}")
        scene = bpy.data.scenes[self.scene_name]
        self.track = TrackRun(scene, bpy.data.objects[self.avatar_name], self.client, self._record,
                              self.write_options, True, self.video)  # fmt: skip
        self.track.calibration = self.calibration
        scene.dlatrack.job_id, scene.dlatrack.job_folder = self.track.session.job_id, str(self.track.folder)
        if self._cancel.is_set():  # ESC came after the last chunk: stop the job the engine just queued
            self.track.session.cancel()
        return self.track.pump()

    def finish(self) -> None:
        if self.track is not None:
            self.track.finish()
