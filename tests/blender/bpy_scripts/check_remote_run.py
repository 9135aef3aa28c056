"""Inside Blender: the remote Track Video's run (`blender/remote_run.py`) against a fake engine whose
upload chunks are slow: it reports the upload's progress without waiting, stops when cancelled, reports an
engine's refusal as the job's error, and hands over to the TrackRun once the job is queued."""

from __future__ import annotations

import queue
import threading
import time
from pathlib import Path

import bpy

import blender_addon
from blender_addon.blender.remote_run import RemoteTrackRun
from blender_addon.blender.scene import WriteOptions


class SlowEngine:
    """upload_* as the engine answers them, each chunk taking `chunk_s`; `fail` refuses the first chunk."""

    def __init__(self, chunk_s: float, fail: bool = False) -> None:
        self.chunk_s, self.fail, self.chunks, self.tracked = chunk_s, fail, 0, None
        self._events: queue.Queue = queue.Queue()

    def upload_begin(self, kind: str, name: str, size: int, sha256: str) -> dict:
        done = kind == "avatar"  # the engine already has the avatar
        self.size = size
        return {"upload_id": f"{kind}-{sha256}", "offset": size if done else 0, "size": size, "complete": done}

    def upload_chunk(self, upload_id: str, offset: int, data: bytes) -> dict:
        time.sleep(self.chunk_s)
        if self.fail:
            raise RuntimeError("[storage_full] upload_begin: the engine's upload store is full")
        self.chunks += 1
        end = offset + len(data)
        return {"upload_id": upload_id, "offset": end, "size": self.size, "complete": end == self.size}

    def load_avatar(self, path: str | None = None, upload: str | None = None) -> str:
        return "av_1"

    def track_job(self, video_path, avatar_id, options=None, video_upload=None, calibration=None, **_) -> dict:
        self.tracked = {"video_path": video_path, "video_upload": video_upload, "calibration": calibration}
        return {"job_id": "job_1", "kind": "track", "state": "queued", "folder": "/gpu-box/state/jobs/job_1"}

    def job_status(self, job_id: str) -> dict:
        return {"job_id": job_id, "kind": "track", "state": "queued", "folder": "/gpu-box/state/jobs/job_1"}

    def job_frames(self, job_id, frames=None, textures=False, preview=False, light_code=True) -> dict:
        return {"manifest": None, "frames": [], "done": [], "arrays": {}, "textures": {}, "light_code": None}

    def events(self) -> queue.Queue:
        return self._events


def _until(condition, timeout: float = 30.0) -> None:
    """Wait as the modal operator's timer would: `condition` usually pumps the run."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def main(args: dict) -> dict:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_addon.register()
    scene = bpy.context.scene
    avatar = bpy.data.objects.new("Avatar", bpy.data.meshes.new("Avatar"))
    scene.collection.objects.link(avatar)
    video = Path(args["video"])
    options = WriteOptions(cache_dir=args["mirror"])
    out: dict = {}

    slow = SlowEngine(chunk_s=0.3)
    run = RemoteTrackRun(scene, avatar, slow, args["package"], str(video), {"start": 0}, options)
    began = time.monotonic()
    first = run.pump()
    out["first_pump_s"] = time.monotonic() - began
    _until(lambda: slow.chunks >= 1)
    during = run.pump()
    out["during"] = [during.state.value, during.text, round(during.fraction, 2), during.finished]
    run.session.cancel()
    _until(lambda: run.pump().finished)
    stopped = run.pump()
    out["cancelled"] = [stopped.state.value, stopped.text, slow.chunks, slow.tracked]
    out["first"] = [first.state.value, first.finished]

    refused = RemoteTrackRun(scene, avatar, SlowEngine(chunk_s=0.0, fail=True), args["package"], str(video), {},
                             options)  # fmt: skip
    _until(lambda: refused.pump().finished)
    report = refused.pump()
    out["refused"] = [report.state.value, report.error]

    fine = SlowEngine(chunk_s=0.0)
    done = RemoteTrackRun(scene, avatar, fine, args["package"], str(video), {}, options)
    _until(lambda: done.pump() is not None and done.track is not None)  # the pump after the upload hands over
    out["handed_over"] = {"job_id": done.session.job_id, "folder": str(done.folder), "chunks": fine.chunks,
                          "tracked": fine.tracked, "scene_job": scene.dlatrack.job_id,
                          "assumed_focal": done.calibration.assumed, "threads": threading.active_count()}  # fmt: skip
    return out
