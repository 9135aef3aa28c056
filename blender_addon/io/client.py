"""Socket client for the dlatrack engine, used inside Blender (stdlib + numpy, no bpy, no torch): the
requests of docs/protocol.md, and starting or stopping a local engine. The connection itself (socket, TLS
pin, reader thread, events queue) is `channel.py`'s.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .channel import (
    CLIENT_VERSION,
    EVENT_KINDS,
    EngineChannel,
    EngineConnectionError,
    EngineError,
    Event,
    is_loopback,
)

log = logging.getLogger(__name__)

__all__ = [
    "CLIENT_VERSION",
    "EVENT_KINDS",
    "EngineClient",
    "EngineConnectionError",
    "EngineError",
    "Event",
    "is_loopback",
    "start_local_engine",
    "stop_local_engine",
]


class EngineClient(EngineChannel):
    """The engine's requests (docs/protocol.md) over one `EngineChannel`."""

    @classmethod
    def from_connection_file(cls, path: str | os.PathLike[str], timeout: float = 60.0) -> EngineClient:
        """Connect using an engine's connection file (JSON: host, port, token, pid, ...).

        A file left by an engine that died is reported as such rather than as a refused connection."""
        path = Path(path)
        try:
            info = json.loads(path.read_text(encoding="utf-8"))
            host, port, token = str(info["host"]), int(info["port"]), str(info["token"])
        except FileNotFoundError as exc:
            raise EngineConnectionError(f"connection file {path} not found: is the engine running?") from exc
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise EngineConnectionError(
                f"connection file {path} is unreadable or lacks host/port/token: {exc}"
            ) from exc
        pid = info.get("pid")
        same_machine = info.get("hostname", socket.gethostname()) == socket.gethostname()
        if same_machine and isinstance(pid, int) and not _pid_alive(pid):
            raise EngineConnectionError(f"connection file {path} is stale: engine process {pid} is not running")
        if host in ("0.0.0.0", "::"):  # bound to every address: this machine's loopback, or the engine's name
            host = "127.0.0.1" if same_machine else str(info.get("hostname") or host)
        fingerprint = info.get("tls_fingerprint")
        return cls(host, port, token, timeout=timeout, fingerprint=str(fingerprint) if fingerprint else None)

    # -- requests --------------------------------------------------------------------------------------
    def hello(self) -> dict[str, Any]:
        """Engine facts from the handshake: engine_version, protocol_version, device, pid."""
        return dict(self.engine_info)

    def status(self) -> dict[str, Any]:
        """Engine status: hello fields + uptime_s, connections, avatars [..], jobs [..], current_job, threads."""
        return self._request("status")[0]

    def load_avatar(self, path: str | os.PathLike[str] | None = None, upload: str | None = None) -> str:
        """Load (and validate) an avatar package on the engine's machine, or an uploaded one -> avatar_id."""
        args = {"upload": upload} if upload is not None else {"path": str(path)}
        return str(self._request("load_avatar", args)[0]["avatar_id"])

    def upload_begin(self, kind: str, name: str, size: int, sha256: str) -> dict[str, Any]:
        """Start or resume an upload -> {upload_id, offset (what the engine has), size, complete}."""
        return self._request("upload_begin", {"kind": kind, "name": name, "size": size, "sha256": sha256})[0]

    def upload_chunk(self, upload_id: str, offset: int, data: bytes) -> dict[str, Any]:
        """Append one chunk (at most 8 MiB) at `offset` -> {upload_id, offset, size, complete}."""
        return self._request("upload_chunk", {"upload_id": upload_id, "offset": offset}, {"data": data})[0]

    def avatar_topology(self, avatar_id: str) -> dict[str, Any]:
        """-> dict with faces [F,3] int32, uv_faces [F,3] int32, uvs [U,2] f32, neutral [V,3] f32 (head frame),
        landmark_faces [68] int32, landmark_barycentrics [68,3] f32, plus texture_size, num_vertices, name..."""
        header, blobs = self._request("avatar_topology", {"avatar_id": avatar_id})
        return {**header, **blobs}

    def _submit(
        self,
        op: str,
        video_path: str | os.PathLike[str] | None,
        avatar_id: str,
        options: Mapping[str, Any] | None,
        video_bytes: bytes | None,
        out_dir: str | None,
        stream_results: bool,
        stream_textures: bool,
        video_name: str | None,
        video_upload: str | None = None,
        calibration: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue a job -> its record {job_id, kind, folder, state}, as the reply gives it (no job_status)."""
        args: dict[str, Any] = {
            "avatar_id": avatar_id,
            "options": dict(options or {}),
            "stream_results": stream_results,
            "stream_textures": stream_textures,
        }
        blobs: dict[str, Any] = {}
        if calibration is not None:
            args["calibration"] = dict(calibration)
        if video_upload is not None:
            args["video_upload"] = video_upload
        elif video_bytes is not None:
            blobs["video"] = video_bytes
            args["video_name"] = video_name or (Path(video_path).name if video_path else "upload.mp4")
        elif video_path is not None:
            args["video"] = str(video_path)
        else:
            raise ValueError(f"{op}: give video_path (on the engine's machine) or video_bytes (uploaded)")
        if out_dir is not None:
            args["out_dir"] = str(out_dir)
        reply = self._request(op, args, blobs, timeout=max(self.timeout, 300.0))[0]
        return {**reply, "job_id": str(reply["job_id"]), "kind": op}

    def track(self, *args: Any, **kwargs: Any) -> str:
        """Queue a tracking job -> job_id (`track_job` has the arguments, and gives the folder too)."""
        return self.track_job(*args, **kwargs)["job_id"]

    def track_job(
        self,
        video_path: str | os.PathLike[str] | None,
        avatar_id: str,
        options: Mapping[str, Any] | None = None,
        video_bytes: bytes | None = None,
        out_dir: str | None = None,
        stream_results: bool = False,
        stream_textures: bool = False,
        video_name: str | None = None,
        video_upload: str | None = None,
        calibration: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Queue a tracking job -> its record {job_id, kind, folder, state}.

        `options` are the pipeline's TrackOptions fields (key_frames, quality, ...). An engine on another
        machine gets the video as a finished upload (`video_upload`, see `io.upload`; or, small ones, as
        `video_bytes`), with its `calibration` {"K": 3x3} when known. Frame events name finished frames; the
        add-on reads each frame once, from the job folder or its mirror (`io.mirror`), so they carry the
        results as blobs only with `stream_results` (the protocol's default, for other clients)."""
        return self._submit(
            "track", video_path, avatar_id, options, video_bytes, out_dir, stream_results, stream_textures,
            video_name, video_upload, calibration,
        )  # fmt: skip

    def adapt(self, *args: Any, **kwargs: Any) -> str:
        """Queue a lighting-adaptation-only job (steps 1 + 2) -> job_id (`adapt_job` gives the folder too)."""
        return self.adapt_job(*args, **kwargs)["job_id"]

    def adapt_job(
        self,
        video_path: str | os.PathLike[str] | None,
        avatar_id: str,
        options: Mapping[str, Any] | None = None,
        video_bytes: bytes | None = None,
        out_dir: str | None = None,
        video_name: str | None = None,
    ) -> dict[str, Any]:
        """Queue a lighting-adaptation-only job (steps 1 + 2) -> its record {job_id, kind, folder, state}."""
        return self._submit("adapt", video_path, avatar_id, options, video_bytes, out_dir, False, False, video_name)

    def selftest(self, frames: int = 10, size: int = 32, frame_seconds: float = 0.0, out_dir: str | None = None) -> str:
        """Queue the engine's self-test job (real per-frame numeric work, no avatar needed) -> job_id."""
        args: dict[str, Any] = {"frames": frames, "size": size, "frame_seconds": frame_seconds}
        if out_dir is not None:
            args["out_dir"] = str(out_dir)
        return str(self._request("selftest", args)[0]["job_id"])

    def job_status(self, job_id: str) -> dict[str, Any]:
        """-> {job_id, kind, state, progress {stage, frame, total, loss, message, eta_s}, error, summary, folder,
        frames_done, created, started, finished}."""
        return self._request("job_status", {"job_id": job_id})[0]

    def jobs(self) -> list[dict[str, Any]]:
        return list(self._request("jobs")[0]["jobs"])

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Ask the engine to stop a job -> its status (state cancelling/cancelled, or already finished)."""
        return self._request("cancel", {"job_id": job_id})[0]

    def attach(self, job_id: str) -> dict[str, Any]:
        """Re-attach to a job after reconnecting: its events stream here from now on -> its status.
        A finished job gets a `done` event right away; finished frames are in its folder / `job_frames`."""
        return self._request("attach", {"job_id": job_id})[0]

    def job_frames(self, job_id: str, frames: Sequence[int] | None = None, textures: bool = False,
                   preview: bool = False, light_code: bool = True) -> dict[str, Any]:  # fmt: skip
        """Finished frames' arrays for clients without the engine's filesystem -> {"manifest", "frames",
        "done" (every finished frame's index), "arrays": {frame: {"vertices", "head_R", "head_t", "r", "z", ...}},
        "textures": {frame: {kind: png}}, "light_code": array | None (unless `light_code` is False),
        "preview": preview.mp4 bytes | None (asked with `preview`, once written)}."""
        args: dict[str, Any] = {"job_id": job_id, "textures": textures}
        if preview:
            args["preview"] = True
        if not light_code:
            args["light_code"] = False
        if frames is not None:
            args["frames"] = [int(f) for f in frames]
        header, blobs = self._request("job_frames", args)
        arrays: dict[int, dict[str, Any]] = {}
        textures_out: dict[int, dict[str, bytes]] = {}
        for name, value in blobs.items():
            if "/" not in name:
                continue
            key, index = name.rsplit("/", 1)
            if key.startswith("texture_"):
                textures_out.setdefault(int(index), {})[key[len("texture_") :]] = value
            else:
                arrays.setdefault(int(index), {})[key] = value
        return {
            "manifest": header.get("manifest"),
            "frames": header.get("frames"),
            "done": header.get("done"),
            "arrays": arrays,
            "textures": textures_out,
            "light_code": blobs.get("light_code"),
            "preview": blobs.get("preview"),
        }

    def decode_view(
        self,
        avatar_id: str,
        job_id: str | None = None,
        frames: Sequence[int] | None = None,
        view: Sequence[float] | np.ndarray | None = None,
        camera: Mapping[str, Any] | None = None,
        name: str | None = None,
        returns: str = "png",
        codes: Mapping[str, np.ndarray] | None = None,
        folder: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """Re-decode fully-lit and relit textures of tracked frames for a viewpoint.

        view: [3] or [N,3] head-frame unit vector(s) towards the camera; or camera {R [3,3], t [3]} (OpenCV
        world->camera in the video camera's world): the engine computes v per frame from the head pose.
        name: also write textures/view_<name>/{full,relit}/<i:06d>.png into the job folder.
        folder: a finished job folder on the engine's disk, instead of a job_id this engine knows.
        codes: instead of job_id/frames, explicit {"z": [N,Z], "r": [N,3], "light_code": [150]} arrays.
        returns "png" | "array" | "none" -> {"frames": [...], "relit": bool, "written": [paths],
        "full": {frame: PNG bytes | [T,T,3] f32 linear}, "relit_textures": {frame: ...}}."""
        args: dict[str, Any] = {"avatar_id": avatar_id, "return": returns}
        if job_id is not None or folder is not None:
            args["frames"] = [int(f) for f in (frames or [])]
        if job_id is not None:
            args["job_id"] = job_id
        if folder is not None:
            args["folder"] = str(folder)
        if view is not None:
            args["view"] = np.asarray(view, dtype=np.float64).tolist()
        if camera is not None:
            args["camera"] = {k: np.asarray(v, dtype=np.float64).tolist() for k, v in camera.items()}
        if name is not None:
            args["name"] = name
        blobs = {k: np.asarray(v, dtype=np.float32) for k, v in (codes or {}).items()}
        header, out = self._request("decode_view", args, blobs)
        full = {int(k.split("/", 1)[1]): v for k, v in out.items() if k.startswith("full/")}
        relit = {int(k.split("/", 1)[1]): v for k, v in out.items() if k.startswith("relit/")}
        return {**header, "full": full, "relit_textures": relit}

    def shutdown(self) -> None:
        """Stop the engine (a running job is interrupted and resumes when an engine starts again)."""
        try:
            self._request("shutdown", timeout=10.0)
        finally:
            self.close()

    def wait(self, job_id: str, timeout: float | None = None, poll_s: float = 0.5) -> dict[str, Any]:
        """Block until the job is finished (batch mode) -> its final status. Uses job_status polling, so
        it works whether or not this connection receives the job's events."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status = self.job_status(job_id)
            if status["state"] in ("completed", "failed", "cancelled"):
                return status
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id}: still {status['state']} after {timeout:.0f} s")
            time.sleep(poll_s)


def _pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would send CTRL_C_EVENT there; rely on the connect attempt instead
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def start_local_engine(
    python: str, connection_file: Path, extra_args: Sequence[str] = (), wait_s: float = 120.0
) -> subprocess.Popen:
    """Start a local engine and wait until it wrote `connection_file` (engine_launch.EngineLaunch, run to the
    end). Raises EngineConnectionError with the log's tail if the engine exits or does not come up in time."""
    from .engine_launch import EngineLaunch

    return EngineLaunch(python, connection_file, extra_args, wait_s).wait()


def stop_local_engine(connection_file: Path, process: subprocess.Popen, wait_s: float = 30.0) -> None:
    """Ask an engine this process started (`start_local_engine`) to shut down, and wait for it to exit."""
    with EngineClient.from_connection_file(connection_file) as client:
        client.shutdown()
    process.wait(wait_s)
