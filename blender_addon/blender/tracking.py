"""One track run in a scene: the engine job's session plus the scene writer, shared by UI and batch.

The writer is created once the engine has written the manifest's camera (K, size, fps) — before that
there is nothing to place in the scene. When the engine's job folder is not on this machine (a remote
engine), frames are mirrored into a local folder first (`io.mirror`); an engine on another machine gets
its inputs by upload (`submit_remote`, `io.remote`) and is never sent a path of this machine.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import bpy

from ..io.calibration import Calibration
from ..io.mirror import RemoteMirror
from ..io.remote import submit_track
from ..io.result import TrackResult
from ..io.session import PumpReport, TrackSession
from ..io.wire.jobfolder import JobFolderError
from .scene import SceneWriter, WriteOptions

log = logging.getLogger(__name__)


class TrackRun:
    """Submit a track job for `avatar` and mirror its results into `scene` as they arrive."""

    def __init__(self, scene: bpy.types.Scene, avatar: bpy.types.Object, client: Any, job_record: Mapping[str, Any],
                 options: WriteOptions, mirror: bool | None = None, local_video: str | None = None,
                 mirror_root: str | None = None) -> None:  # fmt: skip
        """`local_video`: the video on this machine (the mirror's camera background); `mirror_root`: the
        folder to mirror into (default: `job_<id>` under the write options' cache folder)."""
        self.scene_name = scene.name
        self.calibration: Calibration | None = None
        self.avatar_name = avatar.name
        self.options = options
        self.writer: SceneWriter | None = None
        self.session = TrackSession(client, job_record, self.write_frames)
        if not self.session.folder:
            raise RuntimeError(f"engine accepted job {self.session.job_id} but named no job folder")
        self.mirror: RemoteMirror | None = None
        self.folder = Path(self.session.folder)
        if mirror or (mirror is None and not self.folder.is_dir()):  # not our disk: mirror over the socket
            base = Path(options.cache_dir) if options.cache_dir else Path(tempfile.gettempdir()) / "dlatrack"
            self.folder = Path(mirror_root) if mirror_root else base / f"job_{self.session.job_id}"
            self.mirror = RemoteMirror(client, self.session.job_id, self.folder, local_video=local_video)
            log.info("job %s: mirroring the engine's job folder into %s", self.session.job_id, self.folder)

    @classmethod
    def submit(cls, scene: bpy.types.Scene, avatar: bpy.types.Object, client: Any, avatar_id: str, video: str,
               options: Mapping[str, Any], out_dir: str | None, write_options: WriteOptions,
               mirror: bool | None = None) -> TrackRun:  # fmt: skip
        """Start a track job; `mirror` forces (True) or forbids (False) copying its folder over the socket,
        None decides by whether the engine's folder is visible here."""
        record = client.track_job(video, avatar_id, options=dict(options), out_dir=out_dir)
        return cls(scene, avatar, client, record, write_options, mirror)

    @classmethod
    def submit_remote(cls, scene: bpy.types.Scene, avatar: bpy.types.Object, client: Any, avatar_id: str,
                      video: str, options: Mapping[str, Any], write_options: WriteOptions,
                      mirror_root: str | None = None) -> TrackRun:  # fmt: skip
        """Start a job on an engine on another machine: the video is uploaded with its calibration, the
        engine picks its job folder, results are mirrored here (`mirror_root`) for the scene."""
        record, calibration = submit_track(client, video, avatar_id, options)
        run = cls(scene, avatar, client, record, write_options, True, video, mirror_root)
        run.calibration = calibration
        return run

    def _ensure_writer(self) -> SceneWriter | None:
        if self.writer is not None:
            return self.writer
        try:
            result = TrackResult(self.folder)
            if (
                result.manifest.K is None
                or result.manifest.size is None
                or result.manifest.fps is None
            ):
                return None
        except JobFolderError:
            return None  # the engine has not written the manifest yet
        scene = bpy.data.scenes[self.scene_name]
        self.writer = SceneWriter(scene, bpy.data.objects[self.avatar_name], result, self.options)
        return self.writer

    def write_frames(self) -> int:
        if self.mirror is not None:
            self.mirror.want(self.session.announced)
            self.session.announced.clear()
            self.mirror.sync()
        writer = self._ensure_writer()
        if writer is None:
            return 0
        return writer.write_new()

    def pump(self) -> PumpReport:
        return self.session.pump()

    def finish(self) -> None:
        """Final writes after the job ended (whatever the outcome): remaining frames and the textures."""
        if self.mirror is not None:
            self.mirror.sync(everything=True)
        writer = self._ensure_writer()
        if writer is None:
            return
        writer.write_new()
        writer.write_textures()
