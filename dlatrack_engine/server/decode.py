"""decode_view: re-decode fully-lit and relit textures of tracked frames for a new viewpoint.

The DAM's texture is view-dependent (Eq. 1) and G's gain/bias depend on the head pose and view (Eq. 3),
so showing the tracked avatar from a Blender camera other than the video camera needs a fresh decode per
frame: T̂_v = D(z_t, v_v) and T_v = T̂_v ⊙ g_v + b_v with (g_v, b_v) = G(l, [r_t, v_v], T̂_v) (Eq. 2-3).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit import lighting_store
from dlatrack_engine.fit.lighting_store import StoredLighting
from dlatrack_engine.server.avatars import LoadedAvatar
from dlatrack_engine.server.jobqueue import JobError
from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError
from dlatrack_engine.wire.lighting_folder import LightingFolderError
from dlatrack_engine.wire.png import encode_png

log = logging.getLogger(__name__)

BATCH = 8
MAX_FRAMES = 10000
_decode_lock = threading.Lock()  # one decode at a time: bounded memory when many clients ask at once


def view_vectors_from_camera(R: np.ndarray, t: np.ndarray, head_R: np.ndarray, head_t: np.ndarray) -> np.ndarray:
    """Unit vectors from the head centre to the camera centre, in the head frame (conventions.md).

    R, t: OpenCV world->camera of the viewing camera; head_R [N,3,3], head_t [N,3]: head->world per frame."""
    centre = -R.T @ t  # camera centre in the world
    to_camera = centre[None, :] - head_t  # [N,3], world frame
    in_head = np.einsum("nji,nj->ni", head_R, to_camera)  # head_R^T @ v
    norm = np.linalg.norm(in_head, axis=1, keepdims=True)
    if np.any(norm < 1e-9):
        raise JobError("bad_argument", "camera centre coincides with the head centre; no view direction")
    return (in_head / norm).astype(np.float32)


def _as_array(value: Any, name: str, shape_tail: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise JobError("bad_argument", f"'{name}' must be numeric, got {type(value).__name__}") from exc
    if array.shape[-len(shape_tail) :] != shape_tail or not np.all(np.isfinite(array)):
        raise JobError(
            "bad_argument", f"'{name}' must be finite with trailing shape {list(shape_tail)}, got {list(array.shape)}"
        )
    return array


def _is_index(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _job_lighting(folder: JobFolder) -> StoredLighting | None:
    try:
        return lighting_store.read_job(folder, partial=True)
    except LightingFolderError as exc:
        raise JobError("bad_job_folder", str(exc)) from exc


def _lighting_for(loaded: LoadedAvatar, stored: StoredLighting | None) -> torch.nn.Module:
    """G adapted to the job's video (lighting/G.safetensors) when the job wrote one, else the avatar's."""
    if stored is None or stored.weights is None:
        return loaded.avatar.lighting
    try:
        return stored.network(loaded.avatar)
    except ValueError as exc:
        raise JobError("bad_job_folder", str(exc)) from exc


def gather_inputs(
    params: Mapping[str, Any], blobs: Mapping[str, Any], folder: JobFolder | None
) -> dict[str, Any]:
    """Collect z [N,Z], r [N,3], view [N,3], light_code [150] | None from the job folder or the request, and
    the job's stored lighting (`stored`, for its adapted G)."""
    if folder is not None:
        frames, z, r, head_R, head_t, light_code, stored = _job_inputs(params, folder)
    else:
        frames, z, r, head_R, head_t, light_code = _blob_inputs(blobs)
        stored = None
    view = _view_vectors(params, blobs, head_R, head_t, len(z))
    if len(r) != len(z) or len(view) != len(z):
        raise JobError("bad_argument", f"'z' has {len(z)} rows but 'r' has {len(r)} and 'view' {len(view)}")
    return {"frames": np.asarray(frames), "z": z, "r": r, "view": view, "light_code": light_code, "stored": stored}


def _job_inputs(params: Mapping[str, Any], folder: JobFolder) -> tuple[Any, ...]:
    """frames, z, r, head_R, head_t, light_code, stored lighting: the requested frames of a tracked job."""
    frames = params.get("frames")
    if not isinstance(frames, list) or not frames or not all(_is_index(f) for f in frames):
        raise JobError("bad_argument", "'frames' must be a non-empty list of frame indices")
    if len(frames) > MAX_FRAMES:
        raise JobError("bad_argument", f"'frames' lists {len(frames)} frames (max {MAX_FRAMES} per request)")
    missing = [f for f in frames if not folder.has_frame(f)]
    if missing:
        raise JobError(
            "frame_not_found",
            f"{folder.frame_path(missing[0])}: frame {missing[0]} has not been "
            f"written ({len(missing)} of the requested frames are missing)",
        )
    try:
        track = folder.read_track(frames)
    except JobFolderError as exc:
        raise JobError("bad_job_folder", str(exc)) from exc
    stored = _job_lighting(folder)
    # An SH/none baseline job has no G lighting: relighting through G would not be its lighting.
    light_code = frame_light_codes(stored, frames) if stored is not None and stored.info.model == "G" else None
    return frames, track["z"], track["r"], track["head_R"], track["head_t"], light_code, stored


def _blob_inputs(blobs: Mapping[str, Any]) -> tuple[Any, ...]:
    """frames, z, r, head_R, head_t, light_code: codes sent in the request, the head at the origin."""
    if "z" not in blobs:
        raise JobError("bad_argument", "decode_view needs 'job_id' + 'frames', or a 'z' blob [N,Z]")
    raw = blobs["z"]
    if not isinstance(raw, np.ndarray) or raw.ndim not in (1, 2) or raw.size == 0:
        raise JobError("bad_argument", "blob 'z' must be a float32 array [Z] or [N, Z]")
    z = _as_array(raw, "z", (raw.shape[-1],)).reshape(-1, raw.shape[-1])
    if len(z) > MAX_FRAMES:
        raise JobError("bad_argument", f"blob 'z' has {len(z)} rows (max {MAX_FRAMES} per request)")
    r = _as_array(blobs["r"], "r", (3,)).reshape(-1, 3) if "r" in blobs else np.zeros((len(z), 3), np.float32)
    head_R = np.repeat(np.eye(3, dtype=np.float32)[None], len(z), 0)
    head_t = np.zeros((len(z), 3), np.float32)
    light_code = _as_array(blobs["light_code"], "light_code", (150,)) if "light_code" in blobs else None
    return list(range(len(z))), z, r, head_R, head_t, light_code


def _view_vectors(
    params: Mapping[str, Any], blobs: Mapping[str, Any], head_R: np.ndarray, head_t: np.ndarray, n: int
) -> np.ndarray:
    """The unit head-frame view vector per frame [n, 3], from a camera {R, t} or given directly."""
    if "camera" in params:
        camera = params["camera"]
        if not isinstance(camera, dict):
            raise JobError("bad_argument", "'camera' must be an object {R: 3x3, t: 3} (OpenCV world->camera)")
        return view_vectors_from_camera(
            _as_array(camera.get("R"), "camera.R", (3, 3)), _as_array(camera.get("t"), "camera.t", (3,)), head_R, head_t
        )
    if "view" in params or "view" in blobs:
        view = _as_array(params.get("view", blobs.get("view")), "view", (3,)).reshape(-1, 3)
        norm = np.linalg.norm(view, axis=1, keepdims=True)
        if np.any(norm < 1e-9):
            raise JobError("bad_argument", "'view' must be non-zero (a direction from the head to the camera)")
        if len(view) not in (1, n):
            raise JobError("bad_argument", f"'view' has {len(view)} rows; expected 1 or one per frame ({n})")
        return np.broadcast_to(view / norm, (n, 3)).astype(np.float32)
    raise JobError("bad_argument", "decode_view needs 'view' [3] (head frame) or 'camera' {R, t}")


def decode_view(
    loaded: LoadedAvatar, inputs: Mapping[str, Any], folder: JobFolder | None, write_name: str | None, want: str
) -> dict[str, Any]:
    """Decode full + relit textures; returns blobs (`full/<i>`, `relit/<i>` as PNG bytes or float arrays).

    `want`: "png" | "array" | "none" (results only written into the job folder)."""
    avatar = loaded.avatar
    if inputs["z"].shape[1] != avatar.dam.cfg.latent_size:
        raise JobError(
            "bad_argument",
            f"z has {inputs['z'].shape[1]} values per frame; the avatar's latent size is {avatar.dam.cfg.latent_size}",
        )
    device = avatar.device
    blobs: dict[str, Any] = {}
    written: list[str] = []
    with _decode_lock, torch.no_grad():
        lighting = _lighting_for(loaded, inputs["stored"])
        light_code = inputs["light_code"]
        for start in range(0, len(inputs["z"]), BATCH):
            sl = slice(start, start + BATCH)
            z = torch.as_tensor(inputs["z"][sl], device=device)
            view = torch.as_tensor(inputs["view"][sl], device=device)
            _, full = avatar.decode(z, view)  # Eq. 1
            textures = {"full": full}
            if light_code is not None:
                head_view = torch.cat([torch.as_tensor(inputs["r"][sl], device=device), view], dim=-1)  # h_v, Eq. 3
                code = torch.as_tensor(light_code, device=device)
                code = code[sl] if code.ndim == 2 else code.reshape(1, -1).expand(len(z), -1)  # l_t or one l
                gain, bias = lighting(code, head_view, full)
                textures["relit"] = full * gain + bias  # Eq. 2
            for kind, batch in textures.items():
                images = batch.permute(0, 2, 3, 1).cpu().numpy()  # [B,T,T,3], row 0 = top of the UV image
                for offset, image in enumerate(images):
                    index = int(inputs["frames"][start + offset])
                    png = encode_png(linear_to_srgb8(image), compression=1) if want == "png" or write_name else None
                    if write_name and folder is not None:
                        written.append(str(folder.write_texture(kind, index, png, view=write_name)))
                    if want == "png":
                        blobs[f"{kind}/{index}"] = png
                    elif want == "array":
                        blobs[f"{kind}/{index}"] = np.ascontiguousarray(image, dtype=np.float32)
    return {"blobs": blobs, "written": written, "relit": inputs["light_code"] is not None}


def frame_light_codes(stored: StoredLighting, frames: list[int]) -> np.ndarray | None:
    """The light code of each requested frame: the one l of a static lighting [C], or l_t of a time-varying
    ("sequence") lighting [F, C], looked up by video frame index (issue 18: relit textures follow the light)."""
    code = stored.light_code
    if code is None or stored.info.variation != "sequence":
        return code
    rows = {int(f): i for i, f in enumerate(stored.info.source_frames)}
    missing = [f for f in frames if int(f) not in rows]
    if missing:
        raise JobError("frame_not_found", f"{stored.root}: the time-varying lighting has no code for frame "
                                          f"{missing[0]} (it lights frames {stored.info.source_frames[0]}-"
                                          f"{stored.info.source_frames[-1]})")
    return np.ascontiguousarray(code[[rows[int(f)] for f in frames]], dtype=np.float32)


def check_view_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_" for c in name) or len(name) > 64:
        raise JobError("bad_argument", f"'name' {name!r} must be 1-64 letters, digits, '-' or '_'")
    return name


def folder_of(path: str) -> JobFolder:
    folder = JobFolder(Path(path))
    if not folder.exists():
        raise JobError("bad_job_folder", f"job folder '{path}' has no manifest.json")
    return folder
