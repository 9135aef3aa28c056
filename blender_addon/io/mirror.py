"""A local copy of a job folder that lives on the engine's machine (a remote engine), filled over the socket.

The scene writers read job folders from disk. When Blender cannot see the engine's folder, this mirror
fetches finished frames (arrays + texture PNGs) with the `job_frames` request and writes them, with the
manifest and the light code, into a local folder in the same layout — atomically, like the engine does —
so everything downstream is unchanged. Frame events name the frames to fetch (they carry no arrays: this
mirror is the only transfer); `sync(everything=True)` catches up with frames finished before this Blender
session attached (resume, reconnect), and brings the job's `preview.mp4` once the engine has written it (a
few hundred kB: the Result box's Show Comparison). Every frame, the light code and the preview cross the
link once: a sync asks only for what the local copy lacks.

The mirrored manifest is the laptop's: its `video` is the laptop's own file (the camera background), and
the engine's paths, meaningless here, are kept apart under `engine_paths`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .wire.jobfolder import TEXTURE_KINDS, JobFolder
from .wire.manifest import Manifest

log = logging.getLogger(__name__)

TRACK_KINDS = ("track", "adapt")
PREVIEW_FILE = "preview.mp4"  # written by the engine when the job is done (job_summary reads it)


class RemoteMirror:
    """Mirror of job `job_id` in `root`; `want(frames)` queues frames, `sync()` fetches them in batches."""

    def __init__(self, client: Any, job_id: str, root: str | Path, batch: int = 16,
                 local_video: str | None = None) -> None:  # fmt: skip
        self.client, self.job_id, self.batch = client, job_id, batch
        self.local_video = local_video
        self.folder = JobFolder(root)
        self.root = self.folder.root
        self._wanted: set[int] = set()

    def want(self, frames: Iterable[int]) -> None:
        self._wanted.update(int(f) for f in frames)

    def _laptop_manifest(self, manifest: Manifest) -> Manifest:
        """The engine's manifest with the laptop's video and folder in place of the engine's paths."""
        summary, video = manifest.summary, manifest.video
        engine_paths = {"video": video, "out_dir": summary.get("out_dir") if summary is not None else None}
        laptop: dict[str, Any] = {"engine_paths": engine_paths}
        if self.local_video is not None:
            laptop["video"] = {**video, "path": self.local_video} if isinstance(video, dict) else self.local_video
        if summary is not None and "out_dir" in summary:
            laptop["summary"] = {**summary, "out_dir": str(self.root)}
        return manifest.replace(str(self.folder.manifest_path), **laptop)

    def _store(self, reply: dict[str, Any]) -> int:
        manifest = Manifest.from_dict(reply["manifest"], "job_frames reply") if reply.get("manifest") else None
        if manifest is not None:
            self.folder.write_manifest(self._laptop_manifest(manifest))
        track = manifest is None or manifest.kind in TRACK_KINDS
        for index, textures in reply["textures"].items():
            for kind, png in textures.items():
                if kind in TEXTURE_KINDS:
                    self.folder.write_texture(kind, index, png)
        # Arrays last: a frame file's presence means "done", so its textures must already be there.
        for index, arrays in reply["arrays"].items():
            self.folder.write_frame(index, arrays, track=track)
        if reply.get("light_code") is not None:
            self.folder.write_light_code(reply["light_code"])
        if reply.get("preview"):  # the side-by-side video, for the Result box's Show Comparison
            self.folder.write_file(self.root / PREVIEW_FILE, reply["preview"])
        return len(reply["arrays"])

    def _fetch(self, frames: list[int], textures: bool = True, preview: bool = False) -> dict[str, Any]:
        """One `job_frames` request; the light code (written once, by step 2) only while this copy lacks it."""
        need_code = not self.folder.light_code_path.is_file()
        return self.client.job_frames(self.job_id, frames, textures=textures, preview=preview, light_code=need_code)

    def sync(self, everything: bool = False) -> int:
        """Fetch queued frames (or, with `everything`, every finished one this copy lacks) in batches; returns
        how many frames were written locally. Each frame, the light code and the preview come over once."""
        if everything:  # the engine's list of finished frames first: only what is missing comes over
            reply = self._fetch([], textures=False, preview=not (self.root / PREVIEW_FILE).is_file())
            if reply.get("done") is None:
                raise RuntimeError(f"job {self.job_id}: the engine's job_frames reply lists no finished frames "
                                   "('done'): it is older than this add-on; update the engine")  # fmt: skip
            self._store(reply)
            self._wanted.update(int(i) for i in reply["done"])
        todo = sorted(self._wanted - set(self.folder.frames_done()))
        self._wanted.intersection_update(todo)  # what the copy has is wanted no more
        written = 0
        for start in range(0, len(todo), self.batch):
            chunk = todo[start : start + self.batch]
            written += self._store(self._fetch(chunk))
            self._wanted.difference_update(chunk)
        if not todo and not self.folder.exists():  # the manifest alone (camera, fps) before any frame
            self._store(self._fetch([], textures=False))
        return written
