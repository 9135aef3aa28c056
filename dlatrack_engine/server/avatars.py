"""Avatars held by the engine: loaded once, addressed by a short id, validated on the way in.

An engine keeps several avatars; a client refers to one by the id `load_avatar` returned. The id is
derived from the package path and its modification time, so loading the same package twice is free and
a rebuilt package gets a new id. Jobs store the package *path* (not the id) so a restarted engine can
reload the avatar when it resumes them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from dlatrack_engine.server.jobqueue import JobError

if TYPE_CHECKING:
    from dlatrack_engine.avatar.runtime import Avatar

log = logging.getLogger(__name__)


@dataclass
class LoadedAvatar:
    avatar_id: str
    path: str
    avatar: Avatar

    def info(self) -> dict[str, Any]:
        topology = self.avatar.topology_arrays
        return {
            "avatar_id": self.avatar_id,
            "path": self.path,
            "name": self.avatar.config.get("name"),
            "num_vertices": topology.num_vertices,
            "num_faces": topology.num_faces,
            "texture_size": self.avatar.dam.cfg.texture_size,
            "latent_size": self.avatar.dam.cfg.latent_size,
            "code_size": self.avatar.lighting.cfg.code_size,
            "device": str(self.avatar.device),
        }


def _package_mtime(path: Path) -> float:
    if path.is_dir():
        return max((p.stat().st_mtime for p in path.iterdir() if p.is_file()), default=path.stat().st_mtime)
    return path.stat().st_mtime


class AvatarStore:
    """Thread-safe map avatar_id -> loaded avatar on the engine's device."""

    def __init__(self, device_name: str | None) -> None:
        self.device_name = device_name
        self._avatars: dict[str, LoadedAvatar] = {}
        self._lock = threading.Lock()

    def avatar_id_for(self, path: Path) -> str:
        key = f"{path.resolve()}|{_package_mtime(path)}".encode()
        return "av_" + hashlib.sha1(key).hexdigest()[:10]

    def load(self, path_text: str) -> LoadedAvatar:
        """Validate and load a package (folder or zip); errors are JobErrors naming the file and field."""
        path = Path(os.path.expanduser(path_text))
        if not path.exists():
            raise JobError("not_found", f"avatar package '{path}' does not exist")
        avatar_id = self.avatar_id_for(path)
        with self._lock:
            if avatar_id in self._avatars:
                return self._avatars[avatar_id]
            from dlatrack_engine.avatar.format import AvatarFormatError
            from dlatrack_engine.avatar.runtime import Avatar
            from dlatrack_engine.device import pick_device

            try:
                avatar = Avatar.load(path, pick_device(self.device_name))
            except (AvatarFormatError, ValueError, OSError) as exc:
                raise JobError("invalid_avatar", f"avatar package '{path}' failed validation: {exc}") from exc
            loaded = LoadedAvatar(avatar_id, str(path.resolve()), avatar)
            self._avatars[avatar_id] = loaded
            log.info("avatar %s loaded from %s", avatar_id, path)
            return loaded

    def get(self, avatar_id: Any) -> LoadedAvatar:
        if not isinstance(avatar_id, str):
            raise JobError("bad_argument", f"'avatar_id' must be a string, got {type(avatar_id).__name__}")
        with self._lock:
            loaded = self._avatars.get(avatar_id)
        if loaded is None:
            raise JobError("avatar_not_found", f"no avatar with id '{avatar_id}' is loaded (call load_avatar first)")
        return loaded

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [a.info() for a in self._avatars.values()]

    def topology(self, avatar_id: Any) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """Header fields and arrays a client needs to build the mesh: faces, uv_faces, uvs, neutral, landmarks."""
        loaded = self.get(avatar_id)
        arrays = loaded.avatar.topology_arrays.arrays()
        blobs = {
            name: np.ascontiguousarray(value, dtype=np.int32 if np.issubdtype(value.dtype, np.integer) else np.float32)
            for name, value in arrays.items()
        }
        return loaded.info(), blobs
