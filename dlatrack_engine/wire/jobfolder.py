"""The job folder (docs/conventions.md "Job folder"): atomic per-frame writer, manifest, reader.

The manifest's fields are `manifest.py`'s, a frame file's arrays `track_frame.py`'s. Every file is written
through `atomic.py` (a temporary name in the same directory, renamed into place), so a reader (the
add-on, a resumed engine) sees either nothing or a complete file, never half a frame; it is then recorded
with its size and checksum in the folder's ledger (`ledger.py`). Frame i is done when `frames/<i:06d>.npz`
is a regular file matching its record. That is what lets a job killed with SIGKILL resume without losing
or recomputing a finished frame, and without mistaking a damaged or foreign file for a result. Files are
served and read only when they match what was written (never through a link). Folders written before the
ledger existed (no `files` field in the manifest) are read as before: any regular file counts.
Torch-free: the add-on reads results with this module.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import stat
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_bytes
from .ledger import LEDGER_FILE, digest, ledger_for
from .lighting_folder import CODE_FILE, LIGHTING_DIR, WEIGHTS_FILE
from .manifest import MANIFEST, JobFolderError, Manifest, ManifestError
from .partial_writes import remove_partial_writes
from .png import decode_png, encode_png
from .seeds import SEED_FILES, SeedError
from .track_frame import TRACK_FRAME_FIELDS, check_track_frame, decode_frame, encode_frame

log = logging.getLogger(__name__)

__all__ = [
    "TEXTURE_KINDS",
    "TRACK_FRAME_FIELDS",
    "JobFolder",
    "JobFolderError",
    "Manifest",
    "ManifestError",
    "frame_name",
]

TEXTURE_KINDS = ("full", "relit")
FRAME_FILE = re.compile(r"^frames/(\d{6})\.npz$")
_PER_FRAME_FILE = re.compile(r"^(?:textures/(?:view_[A-Za-z0-9_-]+/)?(?:full|relit)|overlay)/(\d{6})\.png$")


def frame_name(index: int) -> str:
    if not isinstance(index, (int, np.integer)) or index < 0:
        raise JobFolderError(f"frame index {index!r} must be a non-negative integer")
    return f"{int(index):06d}"


_LOCKS: dict[str, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _folder_lock(root: Path) -> threading.Lock:
    """One lock per folder per process: the server and the pipeline each hold a JobFolder for the same job,
    and their manifest read-modify-writes must not interleave."""
    key = os.path.abspath(root)
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, threading.Lock())


def _read_regular(path: Path) -> tuple[bytes, os.stat_result]:
    """A file's bytes, refusing links (O_NOFOLLOW) and anything but a regular file."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if path.is_symlink():
            raise JobFolderError(f"{path}: is a link, not a file the job wrote") from exc
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise JobFolderError(f"{path}: not a regular file")
        return handle.read(), info


class JobFolder:
    """Reader and writer for one job's folder. Manifest updates are serialised by a per-folder lock."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        self._lock = _folder_lock(self.root)
        self.ledger = ledger_for(self.root)
        self._legacy: bool | None = None

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
            if manifest.job_id != job_id:
                raise JobFolderError(
                    f"{folder.manifest_path}: belongs to job {manifest.job_id!r}, not {job_id!r} "
                    "(choose an empty output folder)"
                )
            return folder
        seeds = folder._seeds()
        manifest = Manifest.new(job_id, kind, LEDGER_FILE, str(folder.manifest_path), **fields)
        folder.write_manifest(manifest)
        for name, data in seeds.items():
            folder.ledger.record(name, data)
        return folder

    def _seeds(self) -> dict[str, bytes]:
        """A new folder must be empty, or hold only checked seed inputs (`seeds.py`); -> {name: bytes}."""
        if not self.root.is_dir():
            return {}
        names = sorted(p.name for p in self.root.iterdir())
        if not names:
            return {}
        foreign = [name for name in names if name not in SEED_FILES]
        if foreign:
            listed = ", ".join(foreign[:5]) + (" ..." if len(foreign) > 5 else "")
            raise JobFolderError(
                f"{self.root}: output folder is not empty ({listed})"
                f" and holds no job manifest; choose an empty or new folder (a job would overwrite, or trust, "
                f"files it did not write; only the seed inputs {sorted(SEED_FILES)} may be put there beforehand)"
            )
        seeds = {}
        for name in names:
            path = self.root / name
            try:
                data = _read_regular(path)[0]
                SEED_FILES[name](path, data)
            except (OSError, SeedError) as exc:
                raise JobFolderError(f"{path}: unusable seed input: {exc}") from exc
            seeds[name] = data
        return seeds

    def read_manifest(self) -> Manifest:
        path = self.manifest_path
        try:
            data = json.loads(_read_regular(path)[0].decode("utf-8"))
        except FileNotFoundError as exc:
            raise JobFolderError(f"{path}: missing (not a job folder?)") from exc
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise JobFolderError(f"{path}: unreadable JSON ({exc})") from exc
        return Manifest.from_dict(data, str(path))  # ManifestError (a JobFolderError) names the field

    def write_manifest(self, manifest: Manifest | Mapping[str, Any]) -> Manifest:
        """Validate and write atomically (a mirror passes the engine's JSON object); returns what a reader
        will see."""
        if not isinstance(manifest, Manifest):
            manifest = Manifest.from_dict(manifest, str(self.manifest_path))
        try:
            data = json.dumps(manifest.to_dict(), indent=1, allow_nan=False)
        except (TypeError, ValueError) as exc:  # NaN in metrics, an object JSON cannot hold
            raise JobFolderError(f"{self.manifest_path}: {exc}") from exc
        atomic_write_bytes(self.manifest_path, data.encode("utf-8"))
        return manifest

    def update_manifest(self, **fields: Any) -> Manifest:
        """Read-modify-write the manifest atomically; returns the new manifest."""
        with self._lock:
            manifest = self.read_manifest()
            manifest = manifest.replace(str(self.manifest_path), **fields, updated=time.time())
            return self.write_manifest(manifest)

    def mark_stage_done(self, stage: str) -> None:
        with self._lock:
            manifest = self.read_manifest()
            if stage not in manifest.stages_done:
                self.write_manifest(manifest.replace(stages_done=[*manifest.stages_done, stage], updated=time.time()))

    def remove_partial_writes(self) -> int:
        """Delete temp files of writes a killed process never finished (resume calls this); returns the count.
        Only the engine's own temporary names, never a user's `.*.tmp` (`partial_writes.py`)."""
        return remove_partial_writes(self.root)

    # -- files the job wrote -------------------------------------------------------------------------------
    def _relative(self, path: Path) -> str:
        try:
            return Path(path).relative_to(self.root).as_posix()
        except ValueError as exc:
            raise JobFolderError(f"{path}: outside the job folder {self.root}") from exc

    def legacy(self) -> bool:
        """A folder written before the ledger: its files are trusted by existence, as they were then."""
        if self._legacy is None:
            if not self.exists():
                return False  # not decided until a manifest exists (a mirror writes it later)
            self._legacy = self.read_manifest().files is None
        return self._legacy

    def write_file(self, path: Path, data: bytes) -> Path:
        """Write `data` atomically to `path` (inside the folder) and record it in the ledger."""
        relative = self._relative(path)
        atomic_write_bytes(path, data)
        self.ledger.record(relative, data)
        return path

    def trusted(self, path: Path) -> bool:
        """Is `path` a regular file matching what the job wrote there (by size; `read_file` checks the
        checksum too)? Cheap: one lstat."""
        relative = self._relative(path)
        try:
            info = os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISREG(info.st_mode):
            return False
        if self.legacy():
            return True
        entry = self.ledger.get(relative)
        return entry is not None and entry.size == info.st_size

    def written(self, path: Path) -> bool:
        """Did the job record a file at `path` (whatever is there now)?"""
        if self.legacy():
            return path.is_file() and not path.is_symlink()
        return self.ledger.get(self._relative(path)) is not None

    def read_file(self, path: Path) -> bytes:
        """The bytes of a file the job wrote, after checking they are what it wrote; JobFolderError naming
        the file otherwise (FileNotFoundError when it does not exist)."""
        relative = self._relative(path)
        root, parent = os.path.realpath(self.root), os.path.realpath(path.parent)
        if os.path.commonpath([root, parent]) != root:
            raise JobFolderError(f"{path}: its folder leads outside the job folder (a link?)")
        data, info = _read_regular(path)
        if self.legacy():
            return data
        entry = self.ledger.get(relative)
        if entry is None:
            raise JobFolderError(f"{path}: not written by this job (no record in {LEDGER_FILE})")
        if entry.size != len(data):
            raise JobFolderError(f"{path}: changed since the job wrote it ({len(data)} bytes, {entry.size} written)")
        if not self.ledger.was_verified(relative, info) and digest(data) != entry.sha256:
            raise JobFolderError(f"{path}: changed since the job wrote it (its checksum differs)")
        self.ledger.mark_verified(relative, info)
        return data

    def verify_files(self) -> list[str]:
        """Check every recorded file against its size and checksum (resume does this); a file that does not
        match is forgotten, so it is recomputed, and so is what depends on it: the frame of a damaged
        texture or overlay, the lighting stage of a damaged lighting file. Returns the damaged paths."""
        if self.legacy():
            return []
        damaged = []
        for relative, entry in self.ledger.entries().items():
            path = self.root / relative
            try:
                data, info = _read_regular(path)
                ok = self.ledger.was_verified(relative, info) or (
                    len(data) == entry.size and digest(data) == entry.sha256
                )
            except (OSError, JobFolderError):
                ok = False
            if ok:
                self.ledger.mark_verified(relative, info)
                continue
            damaged.append(relative)
            self.ledger.forget(relative)
            frame = _PER_FRAME_FILE.match(relative)
            if frame is not None:
                self.ledger.forget(f"frames/{frame.group(1)}.npz")
        if any(p.startswith(f"{LIGHTING_DIR}/") for p in damaged):
            with self._lock:
                manifest = self.read_manifest()
                if "adapt" in manifest.stages_done:
                    self.write_manifest(manifest.replace(stages_done=[s for s in manifest.stages_done if s != "adapt"]))
        if damaged:
            log.warning(
                "%s: %d file(s) differ from what the job wrote and will be recomputed: %s",
                self.root,
                len(damaged),
                ", ".join(damaged[:10]) + (" ..." if len(damaged) > 10 else ""),
            )
        return damaged

    # -- per-frame results -------------------------------------------------------------------------------
    def frame_path(self, index: int) -> Path:
        return self.root / "frames" / f"{frame_name(index)}.npz"

    def has_frame(self, index: int) -> bool:
        return self.trusted(self.frame_path(index))

    def frames_done(self) -> list[int]:
        """Indices of finished frames: files the job wrote that are still what it wrote (by size)."""
        if self.legacy():
            directory = self.root / "frames"
            if not directory.is_dir():
                return []
            return sorted(int(p.stem) for p in directory.glob("*.npz") if p.stem.isdigit() and not p.is_symlink())
        done = []
        for relative in self.ledger.entries():
            match = FRAME_FILE.match(relative)
            if match and self.trusted(self.root / relative):
                done.append(int(match.group(1)))
        return sorted(done)

    def write_frame(self, index: int, arrays: Mapping[str, Any], track: bool = True) -> Path:
        """Write frame `index` atomically. With `track`, the conventions' fields are required and checked:
        vertices [V,3], head_R [3,3], head_t [3], r [3], z [Z] (float32); extra keys (loss terms) are kept."""
        data = {key: np.asarray(value) for key, value in arrays.items()}
        path = self.frame_path(index)
        if track:
            check_track_frame(data, str(path))
        return self.write_file(path, encode_frame(data))

    def read_frame(self, index: int, track: bool = True) -> dict[str, np.ndarray]:
        path = self.frame_path(index)
        try:
            data = decode_frame(self.read_file(path), str(path))
        except FileNotFoundError as exc:
            raise JobFolderError(f"{path}: frame {index} has not been written") from exc
        if track:
            check_track_frame(data, str(path))
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
        return self.root / LIGHTING_DIR / CODE_FILE

    @property
    def lighting_weights_path(self) -> Path:
        return self.root / LIGHTING_DIR / WEIGHTS_FILE

    def write_light_code(self, light_code: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(light_code, dtype=np.float32), allow_pickle=False)
        self.write_file(self.light_code_path, buffer.getvalue())

    def read_light_code(self) -> np.ndarray:
        path = self.light_code_path
        try:
            return np.load(io.BytesIO(self.read_file(path)), allow_pickle=False)
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
        return self.write_file(path, image if isinstance(image, bytes) else encode_png(image))

    def read_texture(self, kind: str, index: int, view: str | None = None) -> np.ndarray:
        path = self.texture_path(kind, index, view)
        try:
            return decode_png(self.read_file(path))
        except FileNotFoundError as exc:
            raise JobFolderError(f"{path}: texture not written") from exc
        except ValueError as exc:
            raise JobFolderError(f"{path}: {exc}") from exc

    def overlay_path(self, index: int) -> Path:
        return self.root / "overlay" / f"{frame_name(index)}.png"

    def write_overlay(self, index: int, image: np.ndarray | bytes) -> Path:
        path = self.overlay_path(index)
        return self.write_file(path, image if isinstance(image, bytes) else encode_png(image))
