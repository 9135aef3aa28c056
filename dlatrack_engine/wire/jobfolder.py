"""The job folder (docs/conventions.md "Job folder"): atomic per-frame writer, manifest, reader.

Every file is written to a temporary name in the same directory and renamed into place, so a reader (the
add-on, a resumed engine) sees either nothing or a complete file, never half a frame: the presence of
`frames/<i:06d>.npz` means frame i is done. That is what lets a job killed with SIGKILL resume without
losing or recomputing a finished frame. Torch-free: the add-on reads results with this module.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .png import decode_png, encode_png

JOB_FORMAT = "dlatrack-job"
JOB_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TRACK_FRAME_FIELDS = {"vertices": 2, "head_R": 2, "head_t": 1, "r": 1, "z": 1}  # field -> ndim
TEXTURE_KINDS = ("full", "relit")


class JobFolderError(ValueError):
    """A job folder file is missing or malformed; the message names the file and the field."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file + rename in the same directory (atomic on POSIX and Windows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def frame_name(index: int) -> str:
    if not isinstance(index, (int, np.integer)) or index < 0:
        raise JobFolderError(f"frame index {index!r} must be a non-negative integer")
    return f"{int(index):06d}"


def _json_default(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _folder_lock(root: Path) -> threading.Lock:
    """One lock per folder per process: the server and the pipeline each hold a JobFolder for the same job,
    and their manifest read-modify-writes must not interleave."""
    key = os.path.abspath(root)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


class JobFolder:
    """Reader and writer for one job's folder. Manifest updates are serialised by a per-instance lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._lock = _folder_lock(self.root)

    # -- manifest ----------------------------------------------------------------------------------------
    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    def exists(self) -> bool:
        return self.manifest_path.is_file()

    @classmethod
    def create(cls, root: str | os.PathLike[str], job_id: str, kind: str, **fields: Any) -> JobFolder:
        """Start a job folder, or reopen it when its manifest names the same job (resume)."""
        folder = cls(root)
        if folder.exists():
            manifest = folder.read_manifest()
            if manifest.get("job_id") != job_id:
                raise JobFolderError(
                    f"{folder.manifest_path}: belongs to job {manifest.get('job_id')!r}, not {job_id!r} "
                    "(choose an empty output folder)"
                )
            return folder
        now = time.time()
        manifest = {
            "format": JOB_FORMAT,
            "format_version": JOB_FORMAT_VERSION,
            "job_id": job_id,
            "kind": kind,
            "state": "queued",
            "options": {},
            "avatar": None,
            "video": None,
            "frames": [],
            "fps": None,
            "size": None,
            "K": None,
            "stages_done": [],
            "metrics": {},
            "engine_version": None,
            "created": now,
            "updated": now,
        }
        manifest.update(fields)
        folder.write_manifest(manifest)
        return folder

    def read_manifest(self) -> dict[str, Any]:
        path = self.manifest_path
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise JobFolderError(f"{path}: missing (not a job folder?)") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise JobFolderError(f"{path}: unreadable JSON ({exc})") from exc
        if not isinstance(manifest, dict) or manifest.get("format") != JOB_FORMAT:
            raise JobFolderError(f"{path}: field 'format' must be {JOB_FORMAT!r}")
        version = manifest.get("format_version")
        if version != JOB_FORMAT_VERSION:
            raise JobFolderError(f"{path}: field 'format_version' is {version!r}, expected {JOB_FORMAT_VERSION}")
        for key in ("job_id", "kind", "state"):
            if not isinstance(manifest.get(key), str):
                raise JobFolderError(f"{path}: field '{key}' must be a string")
        return manifest

    def write_manifest(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Write atomically; returns the manifest as a reader will see it (numpy values as lists)."""
        data = json.dumps(dict(manifest), indent=1, default=_json_default, allow_nan=False)
        atomic_write_bytes(self.manifest_path, data.encode("utf-8"))
        return json.loads(data)

    def update_manifest(self, **fields: Any) -> dict[str, Any]:
        """Read-modify-write the manifest atomically; returns the new manifest."""
        with self._lock:
            manifest = self.read_manifest()
            manifest.update(fields)
            manifest["updated"] = time.time()
            return self.write_manifest(manifest)

    def mark_stage_done(self, stage: str) -> None:
        with self._lock:
            manifest = self.read_manifest()
            if stage not in manifest["stages_done"]:
                manifest["stages_done"].append(stage)
                manifest["updated"] = time.time()
                self.write_manifest(manifest)

    def remove_partial_writes(self) -> int:
        """Delete temp files of writes a killed process never finished (resume calls this); returns the count."""
        count = 0
        for path in self.root.rglob(".*.tmp"):
            path.unlink(missing_ok=True)
            count += 1
        return count

    # -- per-frame results -------------------------------------------------------------------------------
    def frame_path(self, index: int) -> Path:
        return self.root / "frames" / f"{frame_name(index)}.npz"

    def has_frame(self, index: int) -> bool:
        return self.frame_path(index).is_file()

    def frames_done(self) -> list[int]:
        """Indices of finished frames (temp files of interrupted writes are ignored)."""
        directory = self.root / "frames"
        if not directory.is_dir():
            return []
        return sorted(int(p.stem) for p in directory.glob("*.npz") if p.stem.isdigit())

    def write_frame(self, index: int, arrays: Mapping[str, Any], track: bool = True) -> Path:
        """Write frame `index` atomically. With `track`, the conventions' fields are required and checked:
        vertices [V,3], head_R [3,3], head_t [3], r [3], z [Z] (float32); extra keys (loss terms) are kept."""
        data = {key: np.asarray(value) for key, value in arrays.items()}
        path = self.frame_path(index)
        if track:
            self._check_track_frame(data, str(path))
        for key, value in data.items():
            if value.dtype.kind == "f":
                data[key] = value.astype(np.float32)
        buffer = io.BytesIO()
        np.savez(buffer, **data)
        atomic_write_bytes(path, buffer.getvalue())
        return path

    @staticmethod
    def _check_track_frame(data: Mapping[str, np.ndarray], where: str) -> None:
        for key, ndim in TRACK_FRAME_FIELDS.items():
            if key not in data:
                raise JobFolderError(
                    f"{where}: field '{key}' missing (a track frame needs {sorted(TRACK_FRAME_FIELDS)})"
                )
            if data[key].ndim != ndim or not np.issubdtype(data[key].dtype, np.number):
                raise JobFolderError(f"{where}: field '{key}' has shape {data[key].shape}, expected {ndim} dimensions")
        expected = {"head_R": (3, 3), "head_t": (3,), "r": (3,)}
        for key, shape in expected.items():
            if data[key].shape != shape:
                raise JobFolderError(f"{where}: field '{key}' has shape {data[key].shape}, expected {shape}")
        if data["vertices"].shape[1] != 3:
            raise JobFolderError(f"{where}: field 'vertices' has shape {data['vertices'].shape}, expected [V, 3]")

    def read_frame(self, index: int, track: bool = True) -> dict[str, np.ndarray]:
        path = self.frame_path(index)
        try:
            with np.load(path, allow_pickle=False) as npz:
                data = {key: npz[key] for key in npz.files}
        except FileNotFoundError as exc:
            raise JobFolderError(f"{path}: frame {index} has not been written") from exc
        except (OSError, ValueError) as exc:
            raise JobFolderError(f"{path}: unreadable npz ({exc})") from exc
        if track:
            self._check_track_frame(data, str(path))
        return data

    def read_track(self, indices: Iterable[int] | None = None) -> dict[str, np.ndarray]:
        """Stack finished frames: {"frames": [N] int32, "vertices": [N,V,3], "head_R": [N,3,3], ...}."""
        chosen = self.frames_done() if indices is None else list(indices)
        frames = [self.read_frame(i) for i in chosen]
        out: dict[str, np.ndarray] = {"frames": np.asarray(chosen, dtype=np.int32)}
        for key in TRACK_FRAME_FIELDS:
            out[key] = np.stack([f[key] for f in frames]) if frames else np.zeros((0,), np.float32)
        return out

    # -- lighting, textures, overlays ----------------------------------------------------------------------
    @property
    def light_code_path(self) -> Path:
        return self.root / "lighting" / "light_code.npy"

    @property
    def lighting_weights_path(self) -> Path:
        return self.root / "lighting" / "G.safetensors"

    def write_light_code(self, light_code: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(light_code, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(self.light_code_path, buffer.getvalue())

    def read_light_code(self) -> np.ndarray:
        path = self.light_code_path
        try:
            return np.load(path, allow_pickle=False)
        except FileNotFoundError as exc:
            raise JobFolderError(f"{path}: missing (the lighting adaptation stage has not finished)") from exc
        except (OSError, ValueError) as exc:
            raise JobFolderError(f"{path}: unreadable ({exc})") from exc

    def texture_path(self, kind: str, index: int, view: str | None = None) -> Path:
        if kind not in TEXTURE_KINDS:
            raise JobFolderError(f"texture kind {kind!r} must be one of {TEXTURE_KINDS}")
        base = self.root / "textures" / (f"view_{view}" if view else "")
        return base / kind / f"{frame_name(index)}.png"

    def write_texture(self, kind: str, index: int, image: np.ndarray | bytes, view: str | None = None) -> Path:
        """Write an sRGB PNG texture (`image` as PNG bytes or uint8 [T, T, 3], row 0 = top of the UV image)."""
        path = self.texture_path(kind, index, view)
        atomic_write_bytes(path, image if isinstance(image, bytes) else encode_png(image))
        return path

    def read_texture(self, kind: str, index: int, view: str | None = None) -> np.ndarray:
        path = self.texture_path(kind, index, view)
        try:
            return decode_png(path.read_bytes())
        except FileNotFoundError as exc:
            raise JobFolderError(f"{path}: texture not written") from exc
        except ValueError as exc:
            raise JobFolderError(f"{path}: {exc}") from exc

    def overlay_path(self, index: int) -> Path:
        return self.root / "overlay" / f"{frame_name(index)}.png"

    def write_overlay(self, index: int, image: np.ndarray | bytes) -> Path:
        path = self.overlay_path(index)
        atomic_write_bytes(path, image if isinstance(image, bytes) else encode_png(image))
        return path
