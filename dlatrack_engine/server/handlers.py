"""Request handlers: one function per protocol op, each validating its arguments before doing anything.

A handler gets the connection, the request's `args` object and its blobs, and returns `(result, blobs)`;
any problem is raised as a `JobError(code, message)` that the connection turns into an error reply, so a
bad request is answered, never fatal. docs/protocol.md lists every op with its arguments and results.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlatrack_engine.server.jobqueue import JobError
from dlatrack_engine.server.option_values import check_start_in_video, check_track_options
from dlatrack_engine.server.remote_inputs import (
    check_calibration,
    confine,
    refuse_client_path,
    stage_video,
    write_calibration,
)
from dlatrack_engine.server.uploads import check_upload_id
from dlatrack_engine.server.work import check_selftest_params, load_pipeline
from dlatrack_engine.wire.atomic import atomic_write_bytes
from dlatrack_engine.wire.jobfolder import JobFolderError
from dlatrack_engine.wire.jobs import new_job_id

if TYPE_CHECKING:
    from dlatrack_engine.server.server import Connection, EngineServer

log = logging.getLogger(__name__)

Result = tuple[dict[str, Any], dict[str, Any]]
Handler = Callable[["EngineServer", "Connection", dict[str, Any], dict[str, Any]], Result]
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
PREVIEW_FILE = "preview.mp4"  # report.preview.PREVIEW_FILE (not imported here: it pulls in the renderer)


def arg(args: Mapping[str, Any], name: str, kind: type | tuple[type, ...], default: Any = ..., op: str = "") -> Any:
    """Fetch `args[name]`, checking its JSON type; the error names the op, the argument and the type."""
    if name not in args:
        if default is ...:
            raise JobError("bad_argument", f"{op}: missing argument '{name}'")
        return default
    value = args[name]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    bool_mismatch = isinstance(value, bool) and bool not in kinds  # JSON true/false is not a number here
    if bool_mismatch or not isinstance(value, kinds):
        names = "/".join(k.__name__ for k in kinds)
        raise JobError("bad_argument", f"{op}: argument '{name}' must be {names}, got {type(args[name]).__name__}")
    return value


def _path_arg(args: Mapping[str, Any], name: str, op: str) -> Path:
    """A path on the engine's machine; absolute, because the engine's working directory means nothing to a client."""
    text = arg(args, name, str, op=op)
    if not text or "\x00" in text:
        raise JobError("bad_argument", f"{op}: argument '{name}' must be a non-empty path")
    path = Path(os.path.expanduser(text))
    if not path.is_absolute():
        raise JobError("bad_argument", f"{op}: argument '{name}' must be an absolute path, got {text!r}")
    return path


# -- session ---------------------------------------------------------------------------------------------
def op_status(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    return server.status(), {}


def op_shutdown(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    """Stop the engine after replying; a running job is interrupted and resumes on the next start."""
    conn.after_reply(server.request_stop)
    return {"stopping": True}, {}


# -- avatars ---------------------------------------------------------------------------------------------
def op_load_avatar(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    """An avatar package by path on the engine's machine, or by the id of an uploaded package (a zip)."""
    if args.get("upload") is not None:
        upload_id = check_upload_id(args["upload"], "avatar", "load_avatar")
        path = server.uploads.finished(upload_id, "load_avatar")
    else:
        refuse_client_path(server.remote, "path", "load_avatar", "upload the package (upload_begin) and pass 'upload'")
        path = _path_arg(args, "path", "load_avatar")
    return server.avatars.load(str(path)).info(), {}


def op_upload_begin(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    """Start or resume an upload: the reply's `offset` is where to send from (`complete`: nothing to send)."""
    return server.uploads.begin(args.get("kind"), args.get("name"), args.get("size"), args.get("sha256")), {}


def op_upload_chunk(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    return server.uploads.chunk(args.get("upload_id"), args.get("offset"), blobs.get("data")), {}


def op_avatar_topology(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    return server.avatars.topology(arg(args, "avatar_id", str, op="avatar_topology"))


# -- jobs ------------------------------------------------------------------------------------------------
def _output_root(server: EngineServer, args: Mapping[str, Any], job_id: str, op: str) -> Path:
    if "out_dir" in args and args["out_dir"] is not None:
        refuse_client_path(server.remote, "out_dir", op, "send no out_dir: the engine chooses its job folder")
        root = _path_arg(args, "out_dir", op)
        if root.exists() and not root.is_dir():
            raise JobError("bad_output_folder", f"{op}: out_dir '{root}' exists and is not a folder")
        return root
    return server.jobs.default_root / job_id


def _video_for(
    server: EngineServer, args: Mapping[str, Any], blobs: Mapping[str, Any], job_id: str, op: str
) -> tuple[Path, int | None]:
    """A video path on the engine's filesystem, or the uploaded bytes staged under the engine's state dir
    (kept until the job ends, so a resumed job still has its input); with its frame count when known.
    An uploaded video may bring its calibration (`calibration`), written beside the job's copy."""
    K = check_calibration(args.get("calibration"), op)
    staging = server.state_dir / "uploads" / job_id
    if args.get("video_upload") is not None:
        upload_id = check_upload_id(args["video_upload"], "video", op)
        path = stage_video(server.uploads.finished(upload_id, op), staging, K)
    elif "video" in blobs:
        data = blobs["video"]
        if not isinstance(data, bytes) or not data:
            raise JobError("bad_argument", f"{op}: blob 'video' must be non-empty bytes (the video file)")
        name = arg(args, "video_name", str, "upload.mp4", op=op)
        if not _SAFE_NAME.fullmatch(name):
            raise JobError("bad_argument", f"{op}: video_name {name!r} must be a plain file name")
        path = staging / name
        atomic_write_bytes(path, data)
        write_calibration(staging, K)
        log.info("%s: received %d bytes of video as %s", op, len(data), path)
    else:
        refuse_client_path(server.remote, "video", op, "upload the video (upload_begin) and pass 'video_upload'")
        if K is not None:
            raise JobError("bad_argument", f"{op}: 'calibration' goes with an uploaded video; a clip on the "
                           "engine's disk brings its own (clip.json) or takes the 'focal' option")  # fmt: skip
        path = _path_arg(args, "video", op)
        if not path.exists():
            raise JobError(
                "not_found",
                f"{op}: video '{path}' does not exist (on the engine's machine; "
                "upload it as the 'video' blob when the engine runs elsewhere)",
            )
    from dlatrack_engine.video.reader import VideoError, probe_video

    try:
        info = probe_video(path)  # decodes one frame; sizes are checked before it is decoded
    except VideoError as exc:
        raise JobError("unreadable_video", f"{op}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise JobError("unreadable_video", f"{op}: video '{path}' cannot be read: {exc}") from exc
    return path.resolve(), info.frame_count


def discard_upload(server: EngineServer, job_id: str) -> None:
    shutil.rmtree(server.state_dir / "uploads" / job_id, ignore_errors=True)


def _submit_pipeline(server: EngineServer, conn: Connection, args: dict, blobs: dict, kind: str) -> Result:
    job_id = new_job_id()
    root = _output_root(server, args, job_id, kind)  # first: a refused client path is refused whatever else
    loaded = server.avatars.get(arg(args, "avatar_id", str, op=kind))
    requested = arg(args, "options", dict, {}, op=kind)
    try:
        options = check_track_options(load_pipeline(), requested)  # the one check, before anything is staged
        _check_lighting_from(server, loaded, options, kind)
        video, frame_count = _video_for(server, args, blobs, job_id, kind)
        check_start_in_video(options.start, frame_count, str(video))
        params = {
            "avatar_id": loaded.avatar_id,
            "avatar_path": loaded.path,
            "video": str(video),
            "uploaded": "video" in blobs or args.get("video_upload") is not None,
            "options": options.to_dict(),
            "stream_results": bool(arg(args, "stream_results", bool, True, op=kind)),
            "stream_textures": bool(arg(args, "stream_textures", bool, False, op=kind)),
        }
        job = server.jobs.submit(kind, params, folder=root, subscriber=conn, job_id=job_id)
    except JobError:
        discard_upload(server, job_id)
        raise
    return {"job_id": job.job_id, "folder": job.folder, "state": job.state.value}, {}


def _check_lighting_from(server: EngineServer, loaded: Any, options: Any, kind: str) -> None:
    """A stored lighting to reuse (TrackOptions `lighting_from`) must be readable and adapted for this avatar
    and lighting model."""
    path = options.lighting_from
    if path is None:
        return
    if kind != "track":
        raise JobError("bad_argument", f"{kind}: option 'lighting_from' reuses a lighting; only 'track' takes it")
    if not os.path.isabs(path):
        raise JobError("bad_argument", f"{kind}: option 'lighting_from' must be an absolute path, got {path!r}")
    confine(server.remote, server.state_dir, Path(path), "lighting_from", kind)
    from dlatrack_engine.fit.lighting_store import read_reusable
    from dlatrack_engine.wire.lighting_folder import LightingFolderError

    try:
        read_reusable(path, loaded.avatar, options.lighting)
    except LightingFolderError as exc:
        raise JobError("bad_lighting", f"{kind}: option 'lighting_from': {exc}") from exc


def op_track(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    return _submit_pipeline(server, conn, args, blobs, "track")


def op_adapt(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    return _submit_pipeline(server, conn, args, blobs, "adapt")


def op_selftest(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    params = check_selftest_params(args)
    job_id = new_job_id()
    job = server.jobs.submit("selftest", params, _output_root(server, args, job_id, "selftest"), conn, job_id)
    return {"job_id": job.job_id, "folder": job.folder, "state": job.state.value}, {}


def op_job_status(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    return server.jobs.status(arg(args, "job_id", str, op="job_status")), {}


def op_jobs(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    return {"jobs": server.jobs.jobs()}, {}


def op_cancel(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    job = server.jobs.cancel(arg(args, "job_id", str, op="cancel"))
    return job.to_dict(), {}


def op_attach(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    """Re-attach to a job: its future events stream to this connection; a finished one gets `done` at once."""
    job_id = arg(args, "job_id", str, op="attach")
    record = server.jobs.attach(job_id, conn)
    status = server.jobs.status(job_id)
    if record.job.terminal:
        conn.after_reply(
            {
                "type": "event",
                "job_id": job_id,
                "kind": "done",
                "state": record.job.state.value,
                "summary": record.job.summary,
                "error": record.job.error,
            }
        )
    return status, {}


def op_job_frames(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    """Results of finished frames as blobs, for clients that share no filesystem with the engine."""
    record = server.jobs.get(arg(args, "job_id", str, op="job_frames"))
    done = record.folder.frames_done()
    frames = arg(args, "frames", list, done, op="job_frames")
    if not all(isinstance(f, int) and not isinstance(f, bool) for f in frames) or len(frames) > 10000:
        raise JobError("bad_argument", "job_frames: 'frames' must be a list of at most 10000 frame indices")
    missing = sorted(set(frames) - set(done))
    if missing:
        raise JobError("frame_not_found", f"job_frames: frames {missing[:10]} of job {record.job.job_id} are not done")
    out: dict[str, Any] = {}
    track = record.job.kind in ("track", "adapt")
    with_textures = arg(args, "textures", bool, False, op="job_frames")
    with_preview = arg(args, "preview", bool, False, op="job_frames")
    with_code = arg(args, "light_code", bool, True, op="job_frames")  # a mirror that has it asks no more
    try:
        for index in frames:
            for key, value in record.folder.read_frame(index, track=track).items():
                out[f"{key}/{index}"] = np.ascontiguousarray(value)
            if with_textures:  # only files the job wrote, checked against their record: never a link
                for kind in ("full", "relit"):
                    path = record.folder.texture_path(kind, index)
                    if record.folder.written(path):
                        out[f"texture_{kind}/{index}"] = record.folder.read_file(path)
        if with_code and record.folder.written(record.folder.light_code_path):
            out["light_code"] = record.folder.read_light_code()
        preview = record.folder.root / PREVIEW_FILE
        if with_preview and record.folder.written(preview):  # the job's own preview.mp4, never a link
            out["preview"] = record.folder.read_file(preview)
    except (JobFolderError, OSError) as exc:
        raise JobError("bad_job_folder", str(exc)) from exc
    manifest = record.folder.read_manifest().to_dict()
    return {"job_id": record.job.job_id, "frames": frames, "done": done, "manifest": manifest}, out


def op_decode_view(server: EngineServer, conn: Connection, args: dict, blobs: dict) -> Result:
    from dlatrack_engine.server import decode as decode_mod  # torch: imported on first use, not at start-up

    loaded = server.avatars.get(arg(args, "avatar_id", str, op="decode_view"))
    want = arg(args, "return", str, "png", op="decode_view")
    if want not in ("png", "array", "none"):
        raise JobError("bad_argument", f"decode_view: 'return' must be png, array or none, got {want!r}")
    name = decode_mod.check_view_name(args.get("name"))
    job_id = arg(args, "job_id", (str, type(None)), None, op="decode_view")
    folder_path = arg(args, "folder", (str, type(None)), None, op="decode_view")
    if job_id:
        folder = server.jobs.get(job_id).folder
    elif folder_path:  # a finished job folder on the engine's disk (e.g. from `dlatrack track`)
        requested = _path_arg(args, "folder", "decode_view")
        path = confine(server.remote, server.state_dir, requested, "folder", "decode_view")
        folder = decode_mod.folder_of(str(path))
    else:
        folder = None
    if name and folder is None:
        raise JobError("bad_argument", "decode_view: 'name' (write into the job folder) needs 'job_id' or 'folder'")
    inputs = decode_mod.gather_inputs(args, blobs, folder)
    result = decode_mod.decode_view(loaded, inputs, folder, name, want)
    header = {"frames": [int(f) for f in inputs["frames"]], "relit": result["relit"], "written": result["written"]}
    return header, result["blobs"]


HANDLERS: dict[str, Handler] = {
    "status": op_status,
    "shutdown": op_shutdown,
    "load_avatar": op_load_avatar,
    "upload_begin": op_upload_begin,
    "upload_chunk": op_upload_chunk,
    "avatar_topology": op_avatar_topology,
    "track": op_track,
    "adapt": op_adapt,
    "selftest": op_selftest,
    "decode_view": op_decode_view,
    "job_status": op_job_status,
    "jobs": op_jobs,
    "job_frames": op_job_frames,
    "cancel": op_cancel,
    "attach": op_attach,
}
