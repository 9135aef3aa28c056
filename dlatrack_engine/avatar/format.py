"""The avatar package on disk: `avatar.json` + `weights.safetensors` + `topology.npz` (a folder or a zip).

Loading checks every field before any model is built, so a wrong or damaged file fails with a message that
names the file, the field and what was expected, instead of a shape error deep inside a forward pass.
Building models from the tensors is `avatar.runtime`'s job; this module knows files, not networks. Sizes
(of files, declared arrays, config values and the networks they describe) are checked against
`avatar.limits` before anything is read or allocated.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors_bytes
from safetensors.torch import save as save_safetensors_bytes

from dlatrack_engine.avatar.limits import (
    LimitError,
    check_config_values,
    check_model_size,
    check_npz_arrays,
)
from dlatrack_engine.avatar.package_files import (
    AVATAR_JSON,
    TOPOLOGY_FILE,
    WEIGHTS_FILE,
    AvatarFormatError,
    PackageFiles,
    write_package_files,
)

FORMAT_NAME = "dlatrack-avatar"
FORMAT_VERSION = 1
NUM_LANDMARKS = 68
REQUIRED_WEIGHT_PREFIXES = ("dam.", "lighting.")

# Fields of avatar.json, with the type each must have. Nested sections are checked further below.
_REQUIRED_FIELDS: dict[str, type | tuple[type, ...]] = {
    "format": str,
    "format_version": int,
    "name": str,
    "units": str,
    "camera_convention": str,
    "head_frame": str,
    "topology": dict,
    "texture_size": int,
    "latent_size": int,
    "dam": dict,
    "lighting": dict,
    "landmarks": dict,
    "provenance": dict,
}
_EXPECTED_VALUES = {
    "format": FORMAT_NAME,
    "units": "m",
    "camera_convention": "opencv",
    "head_frame": "x-left,y-up,z-forward",
}


@dataclass(frozen=True)
class Topology:
    """Mesh connectivity and rest shape shared by every frame (conventions.md, "Topology")."""

    faces: np.ndarray  # [F, 3] int32 vertex indices
    uv_faces: np.ndarray  # [F, 3] int32 indices into uvs
    uvs: np.ndarray  # [U, 2] float32, Blender/OpenGL convention (v up)
    neutral: np.ndarray  # [V, 3] float32, head frame, metres
    landmark_faces: np.ndarray  # [68] int32, iBUG-68 order
    landmark_barycentrics: np.ndarray  # [68, 3] float32

    @property
    def num_vertices(self) -> int:
        return int(self.neutral.shape[0])

    @property
    def num_faces(self) -> int:
        return int(self.faces.shape[0])

    @property
    def num_uvs(self) -> int:
        return int(self.uvs.shape[0])

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            "faces": self.faces,
            "uv_faces": self.uv_faces,
            "uvs": self.uvs,
            "neutral": self.neutral,
            "landmark_faces": self.landmark_faces,
            "landmark_barycentrics": self.landmark_barycentrics,
        }


@dataclass
class AvatarPackage:
    """Everything in a package, validated: the parsed avatar.json, the weight tensors and the topology."""

    config: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    topology: Topology
    source: str


def topology_from_arrays(arrays: Mapping[str, np.ndarray], where: str = TOPOLOGY_FILE) -> Topology:
    """Validate the six topology arrays (dtype, shape, index ranges) and build a `Topology`."""

    def get(name: str) -> np.ndarray:
        if name not in arrays:
            raise AvatarFormatError(f"{where}: array '{name}' is missing (expected {_TOPOLOGY_SHAPES[name]})")
        return np.asarray(arrays[name])

    faces = _check_array(get("faces"), "faces", where, np.integer, (None, 3))
    uv_faces = _check_array(get("uv_faces"), "uv_faces", where, np.integer, (faces.shape[0], 3))
    uvs = _check_array(get("uvs"), "uvs", where, np.floating, (None, 2))
    neutral = _check_array(get("neutral"), "neutral", where, np.floating, (None, 3))
    lm_faces = _check_array(get("landmark_faces"), "landmark_faces", where, np.integer, (NUM_LANDMARKS,))
    lm_bary = _check_array(
        get("landmark_barycentrics"), "landmark_barycentrics", where, np.floating, (NUM_LANDMARKS, 3)
    )
    _check_index_range(faces, neutral.shape[0], "faces", "vertex", where)
    _check_index_range(uv_faces, uvs.shape[0], "uv_faces", "uv", where)
    _check_index_range(lm_faces, faces.shape[0], "landmark_faces", "face", where)
    if not np.all(np.isfinite(neutral)) or not np.all(np.isfinite(uvs)):
        raise AvatarFormatError(f"{where}: 'neutral' and 'uvs' must be finite (found NaN or inf)")
    if np.any(lm_bary < -1e-4) or np.any(np.abs(lm_bary.sum(axis=1) - 1.0) > 1e-3):
        raise AvatarFormatError(
            f"{where}: 'landmark_barycentrics' rows must be non-negative and sum to 1 (barycentric coordinates)"
        )
    return Topology(
        faces=faces.astype(np.int32),
        uv_faces=uv_faces.astype(np.int32),
        uvs=uvs.astype(np.float32),
        neutral=neutral.astype(np.float32),
        landmark_faces=lm_faces.astype(np.int32),
        landmark_barycentrics=lm_bary.astype(np.float32),
    )


_TOPOLOGY_SHAPES = {
    "faces": "[F, 3] int",
    "uv_faces": "[F, 3] int",
    "uvs": "[U, 2] float",
    "neutral": "[V, 3] float",
    "landmark_faces": f"[{NUM_LANDMARKS}] int",
    "landmark_barycentrics": f"[{NUM_LANDMARKS}, 3] float",
}


def _check_array(
    array: np.ndarray, name: str, where: str, kind: type, shape: tuple[int | None, ...]
) -> np.ndarray:
    expected = _TOPOLOGY_SHAPES[name]
    if not np.issubdtype(array.dtype, kind):
        raise AvatarFormatError(f"{where}: '{name}' has dtype {array.dtype}, expected {expected}")
    if array.ndim != len(shape) or any(
        want is not None and got != want for got, want in zip(array.shape, shape, strict=True)
    ):
        raise AvatarFormatError(f"{where}: '{name}' has shape {list(array.shape)}, expected {expected}")
    if array.shape[0] == 0:
        raise AvatarFormatError(f"{where}: '{name}' is empty, expected {expected}")
    return array


def _check_index_range(indices: np.ndarray, count: int, name: str, what: str, where: str) -> None:
    low, high = int(indices.min()), int(indices.max())
    if low < 0 or high >= count:
        raise AvatarFormatError(
            f"{where}: '{name}' holds {what} indices in [{low}, {high}] but there are only {count} {what}s"
        )


def validate_config(config: Mapping[str, Any], topology: Topology, where: str = AVATAR_JSON) -> None:
    """Check avatar.json's fields and that its sizes agree with the topology."""
    for field, kind in _REQUIRED_FIELDS.items():
        if field not in config:
            raise AvatarFormatError(f"{where}: field '{field}' is missing")
        value = config[field]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise AvatarFormatError(
                f"{where}: field '{field}' is {type(value).__name__} {value!r}, expected {_type_name(kind)}"
            )
    if config["format"] != FORMAT_NAME:
        raise AvatarFormatError(f"{where}: field 'format' is {config['format']!r}, expected {FORMAT_NAME!r}")
    if config["format_version"] != FORMAT_VERSION:
        raise AvatarFormatError(
            f"{where}: field 'format_version' is {config['format_version']}, expected {FORMAT_VERSION} "
            "(this engine reads version 1 only; re-export the avatar with a matching dlatrack)"
        )
    for field, expected in _EXPECTED_VALUES.items():
        if config[field] != expected:
            raise AvatarFormatError(f"{where}: field '{field}' is {config[field]!r}, expected {expected!r}")
    for field in ("texture_size", "latent_size"):
        if config[field] <= 0:
            raise AvatarFormatError(f"{where}: field '{field}' must be positive, got {config[field]}")
    sizes = {"num_vertices": topology.num_vertices, "num_faces": topology.num_faces, "num_uvs": topology.num_uvs}
    for field, actual in sizes.items():
        declared = config["topology"].get(field)
        if declared != actual:
            raise AvatarFormatError(
                f"{where}: field 'topology.{field}' is {declared!r} but {TOPOLOGY_FILE} has {actual}"
            )
    landmarks = config["landmarks"]
    if landmarks.get("scheme") != "ibug68" or landmarks.get("count") != NUM_LANDMARKS:
        raise AvatarFormatError(
            f"{where}: field 'landmarks' is {landmarks!r}, expected {{'scheme': 'ibug68', 'count': 68}}"
        )
    embeddings = landmarks.get("detector_embeddings", {})
    if not isinstance(embeddings, dict):
        raise AvatarFormatError(f"{where}: field 'landmarks.detector_embeddings' must be an object")
    for detector, entry in embeddings.items():
        _check_embedding(entry, topology.num_faces, f"{where}: field 'landmarks.detector_embeddings.{detector}'")


def _check_embedding(entry: Any, num_faces: int, where: str) -> None:
    """A detector's calibrated ℓ_i: 68 face indices and 68 barycentric rows (>= 0, summing to 1), and
    optionally the same per view-yaw bin (`view_bins`: yaw_deg increasing, faces [Bn, 68], barycentrics
    [Bn, 68, 3])."""
    if not isinstance(entry, dict):
        raise AvatarFormatError(f"{where} must be an object with 'faces' and 'barycentrics'")
    _check_landmark_points(entry.get("faces"), entry.get("barycentrics"), (), num_faces, where)
    bins = entry.get("view_bins")
    if bins is None:
        return
    if not isinstance(bins, dict):
        raise AvatarFormatError(f"{where} (view_bins) must be an object with 'yaw_deg', 'faces' and 'barycentrics'")
    try:
        yaw = np.asarray(bins.get("yaw_deg"), dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AvatarFormatError(f"{where} (view_bins): 'yaw_deg' is not a numeric array ({error})") from error
    if yaw.ndim != 1 or len(yaw) < 2 or not np.all(np.diff(yaw) > 0) or np.abs(yaw).max() > 180:
        raise AvatarFormatError(f"{where} (view_bins): 'yaw_deg' must be 2 or more increasing angles in [-180, 180]")
    _check_landmark_points(bins.get("faces"), bins.get("barycentrics"), (len(yaw),), num_faces, f"{where} (view_bins)")


def _check_landmark_points(faces: Any, bary: Any, lead: tuple[int, ...], num_faces: int, where: str) -> None:
    """faces [*lead, 68] face indices and barycentrics [*lead, 68, 3] (rows >= 0, summing to 1)."""
    try:
        faces = np.asarray(faces, dtype=np.int64)
        bary = np.asarray(bary, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise AvatarFormatError(f"{where}: 'faces'/'barycentrics' are not numeric arrays ({error})") from error
    if faces.shape != (*lead, NUM_LANDMARKS) or bary.shape != (*lead, NUM_LANDMARKS, 3):
        raise AvatarFormatError(
            f"{where}: expected faces {[*lead, 68]} and barycentrics {[*lead, 68, 3]}, got {list(faces.shape)} "
            f"and {list(bary.shape)}"
        )
    if faces.min() < 0 or faces.max() >= num_faces:
        raise AvatarFormatError(f"{where}: face index out of range [0, {num_faces})")
    if (bary < -1e-6).any() or np.abs(bary.sum(-1) - 1.0).max() > 1e-4:
        raise AvatarFormatError(f"{where}: barycentric rows must be non-negative and sum to 1")


def _type_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {"str": "a string", "int": "an integer", "dict": "an object", "float": "a number"}
    return " or ".join(names.get(k.__name__, k.__name__) for k in kinds)


def validate_tensors(tensors: Mapping[str, torch.Tensor], where: str = WEIGHTS_FILE) -> None:
    """Weights must cover both networks and be finite; exact keys are checked when models load them."""
    for prefix in REQUIRED_WEIGHT_PREFIXES:
        if not any(key.startswith(prefix) for key in tensors):
            raise AvatarFormatError(f"{where}: no tensors under '{prefix}' (expected the {prefix[:-1]} weights)")
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise AvatarFormatError(f"{where}: tensor '{key}' contains NaN or inf")


def load_avatar_package(path: str | os.PathLike[str]) -> AvatarPackage:
    """Read and validate an avatar package folder or zip. Raises `AvatarFormatError` naming the problem."""
    files = PackageFiles(Path(path))
    try:
        config = json.loads(files.read(AVATAR_JSON).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise AvatarFormatError(f"{files.name(AVATAR_JSON)}: not valid JSON ({error})") from error
    if not isinstance(config, dict):
        raise AvatarFormatError(f"{files.name(AVATAR_JSON)}: expected a JSON object at the top level")
    try:
        check_config_values(config, files.name(AVATAR_JSON))
        check_model_size(config, files.name(AVATAR_JSON))
        topology_bytes = files.read(TOPOLOGY_FILE)
        check_npz_arrays(topology_bytes, files.name(TOPOLOGY_FILE))
    except LimitError as error:
        raise AvatarFormatError(str(error)) from error
    try:
        with np.load(io.BytesIO(topology_bytes), allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise AvatarFormatError(f"{files.name(TOPOLOGY_FILE)}: not a readable .npz ({error})") from error
    topology = topology_from_arrays(arrays, files.name(TOPOLOGY_FILE))
    validate_config(config, topology, files.name(AVATAR_JSON))
    # Migration: G's energy normalisation became LightingConfig's default after packages were written
    # without the key; those G were trained without it, so a missing key keeps meaning False.
    config["lighting"].setdefault("energy_normalised", False)
    try:
        tensors = load_safetensors_bytes(files.read(WEIGHTS_FILE))
    except (SafetensorError, ValueError, RuntimeError) as error:
        raise AvatarFormatError(
            f"{files.name(WEIGHTS_FILE)}: not a readable safetensors file (truncated or corrupt?): {error}"
        ) from error
    validate_tensors(tensors, files.name(WEIGHTS_FILE))
    return AvatarPackage(config=config, tensors=tensors, topology=topology, source=str(path))


def save_avatar_package(
    path: str | os.PathLike[str],
    config: Mapping[str, Any],
    tensors: Mapping[str, torch.Tensor],
    topology: Topology,
) -> Path:
    """Write a package folder (or a `.zip` when `path` ends in .zip) after validating what goes in.

    Files are written to a temporary name and renamed, so an interrupted save never leaves a package that
    looks complete but is not.
    """
    config = dict(config)
    config.setdefault("format", FORMAT_NAME)
    config.setdefault("format_version", FORMAT_VERSION)
    config["topology"] = {
        "num_vertices": topology.num_vertices,
        "num_faces": topology.num_faces,
        "num_uvs": topology.num_uvs,
    }
    validate_config(config, topology)
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in tensors.items()}
    validate_tensors(tensors)
    payload = {
        AVATAR_JSON: json.dumps(config, indent=2, sort_keys=True).encode("utf-8"),
        WEIGHTS_FILE: save_safetensors_bytes(tensors, metadata={"format": FORMAT_NAME}),
        TOPOLOGY_FILE: _npz_bytes(topology.arrays()),
    }
    return write_package_files(Path(path), payload)


def _npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()
