"""Read an avatar package's topology and name inside Blender (stdlib + numpy; the engine validates weights).

A package is a folder or a zip of one holding `avatar.json` and `topology.npz` (docs/conventions.md).
The add-on only needs the mesh: faces, UVs and the neutral shape, converted to Blender's object frame.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import convert

AVATAR_JSON = "avatar.json"
TOPOLOGY_FILE = "topology.npz"


class AvatarPackageError(ValueError):
    """The package is unreadable or a topology array is malformed; names the file and field."""


@dataclass
class AvatarMesh:
    name: str
    faces: np.ndarray  # [F, 3] int32
    uv_faces: np.ndarray  # [F, 3] int32
    uvs: np.ndarray  # [U, 2] float32 (v up)
    neutral: np.ndarray  # [V, 3] float32, Blender object frame
    texture_size: int | None
    source: str


def _read_member(package: Path, member: str) -> bytes:
    if package.is_dir():
        path = package / member
        if not path.is_file():
            raise AvatarPackageError(f"{path}: missing (is {package} an avatar package?)")
        return path.read_bytes()
    if zipfile.is_zipfile(package):
        with zipfile.ZipFile(package) as archive:
            names = {Path(n).name if n.count("/") <= 1 else n: n for n in archive.namelist()}
            if member not in names:
                raise AvatarPackageError(f"{package}: zip has no '{member}' at its top level or in one folder")
            return archive.read(names[member])
    raise AvatarPackageError(f"{package}: not a folder or a zip file (expected an avatar package)")


def _array(arrays: dict[str, Any], name: str, where: str, kind: str, columns: int) -> np.ndarray:
    if name not in arrays:
        raise AvatarPackageError(f"{where}: array '{name}' missing")
    value = np.asarray(arrays[name])
    if value.ndim != 2 or value.shape[1] != columns or value.dtype.kind not in kind:
        raise AvatarPackageError(
            f"{where}: array '{name}' is {value.dtype} {value.shape}, expected [N, {columns}] ({kind})"
        )
    return value


def read_avatar_mesh(package: str | Path) -> AvatarMesh:
    """Topology + name of the package at `package`, neutral shape in Blender's object frame."""
    package = Path(package)
    if not package.exists():
        raise AvatarPackageError(f"{package}: no such avatar package")
    try:
        config = json.loads(_read_member(package, AVATAR_JSON).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AvatarPackageError(f"{package}/{AVATAR_JSON}: unreadable JSON ({exc})") from exc
    where = f"{package}/{TOPOLOGY_FILE}"
    try:
        with np.load(io.BytesIO(_read_member(package, TOPOLOGY_FILE)), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (OSError, ValueError) as exc:
        raise AvatarPackageError(f"{where}: not a readable .npz ({exc})") from exc
    config = config if isinstance(config, dict) else {}
    return avatar_mesh_from_arrays(arrays, str(config.get("name") or package.stem), config.get("texture_size"),
                                   str(package), where)  # fmt: skip


def avatar_mesh_from_arrays(arrays: dict[str, Any], name: str, texture_size: Any, source: str,
                            where: str = "avatar topology") -> AvatarMesh:  # fmt: skip
    """Validate topology arrays (from a package, or from the engine's `avatar_topology` reply for an
    engine on another machine) and convert the neutral shape to Blender's object frame."""
    faces = _array(arrays, "faces", where, "iu", 3)
    uv_faces = _array(arrays, "uv_faces", where, "iu", 3)
    uvs = _array(arrays, "uvs", where, "f", 2)
    neutral = _array(arrays, "neutral", where, "f", 3)
    if uv_faces.shape != faces.shape:
        raise AvatarPackageError(f"{where}: 'uv_faces' {uv_faces.shape} must match 'faces' {faces.shape}")
    if faces.size and (faces.min() < 0 or faces.max() >= len(neutral)):
        raise AvatarPackageError(f"{where}: 'faces' index outside [0, {len(neutral)})")
    if uv_faces.size and (uv_faces.min() < 0 or uv_faces.max() >= len(uvs)):
        raise AvatarPackageError(f"{where}: 'uv_faces' index outside [0, {len(uvs)})")
    return AvatarMesh(
        name=name,
        faces=faces.astype(np.int32),
        uv_faces=uv_faces.astype(np.int32),
        uvs=uvs.astype(np.float32),
        neutral=convert.head_vertices_to_object(neutral),
        texture_size=int(texture_size) if isinstance(texture_size, int) else None,
        source=source,
    )
