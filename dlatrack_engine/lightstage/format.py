"""The light-stage dataset format (conventions.md, "Light-stage dataset"): names, constants and checks.

numpy + stdlib only: the writer that uses it runs inside Blender's Python, and a user with a real light
stage can write the format from any script. `validate_dataset_json` is what every reader calls first, so
a wrong file fails with the file, the field and what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

FORMAT_NAME = "dlatrack-lightstage"
FORMAT_VERSION = 1
DATASET_JSON = "dataset.json"
TOPOLOGY_FILE = "topology.npz"
NUM_LIGHT_GROUPS = 50
LIGHT_CODE_SIZE = 3 * NUM_LIGHT_GROUPS  # 50 groups x RGB (docs/method.md, Eq. 2-3)
FRAME_KINDS = ("full", "group")
DEFAULT_EXPOSURE_SCALE = 4.0  # linear value = png / 65535 * exposure_scale


class LightStageFormatError(ValueError):
    """A dataset file or field is wrong; the message names which and what was expected."""


def frame_dir(frame_id: int) -> str:
    return f"frames/{frame_id:06d}"


def uv_dir(frame_id: int) -> str:
    return f"uv/{frame_id:06d}"


def full_light_code() -> np.ndarray:
    """All 50 groups on at unit intensity: the fully-lit pattern."""
    return np.ones(LIGHT_CODE_SIZE, dtype=np.float32)


def group_light_code(groups: list[int] | np.ndarray, colours: np.ndarray | None = None) -> np.ndarray:
    """Code with only `groups` on (RGB `colours [len(groups), 3]`, white by default)."""
    code = np.zeros((NUM_LIGHT_GROUPS, 3), dtype=np.float32)
    groups = np.asarray(groups, dtype=int)
    if groups.size and (groups.min() < 0 or groups.max() >= NUM_LIGHT_GROUPS):
        raise LightStageFormatError(f"light groups {groups.tolist()} out of range 0..{NUM_LIGHT_GROUPS - 1}")
    code[groups] = 1.0 if colours is None else np.asarray(colours, np.float32)
    return code.reshape(-1)


def _require(mapping: Mapping[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in mapping:
        raise LightStageFormatError(f"{where}: field '{key}' is missing")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise LightStageFormatError(f"{where}: field '{key}' is {type(value).__name__}, expected {kind}")
    return value


def _matrix(value: Any, shape: tuple[int, ...], where: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != shape or not np.all(np.isfinite(array)):
        raise LightStageFormatError(f"{where}: expected a finite {list(shape)} array, got shape {array.shape}")
    return array


def validate_dataset_json(config: Mapping[str, Any], where: str = DATASET_JSON) -> None:
    """Check every field of dataset.json (types, shapes, unique names and ids, frame kinds)."""
    if _require(config, "format", str, where) != FORMAT_NAME:
        raise LightStageFormatError(f"{where}: field 'format' is {config['format']!r}, expected {FORMAT_NAME!r}")
    version = _require(config, "format_version", int, where)
    if version > FORMAT_VERSION:
        raise LightStageFormatError(f"{where}: format_version {version} is newer than this reader ({FORMAT_VERSION})")
    scale = _require(config, "exposure_scale", (int, float), where)
    if not scale > 0:
        raise LightStageFormatError(f"{where}: field 'exposure_scale' must be > 0, got {scale}")
    if _require(config, "num_light_groups", int, where) != NUM_LIGHT_GROUPS:
        raise LightStageFormatError(f"{where}: field 'num_light_groups' must be {NUM_LIGHT_GROUPS}")
    _require(config, "topology", str, where)
    cameras = _require(config, "cameras", list, where)
    if not cameras:
        raise LightStageFormatError(f"{where}: field 'cameras' is empty (expected at least one camera)")
    names = set()
    for n, cam in enumerate(cameras):
        at = f"{where}: cameras[{n}]"
        name = _require(cam, "name", str, at)
        if name in names or not name or "/" in name:
            raise LightStageFormatError(f"{at}: camera name {name!r} is empty, has '/', or is used twice")
        names.add(name)
        _matrix(_require(cam, "K", list, at), (3, 3), f"{at}.K")
        rot = _matrix(_require(cam, "R", list, at), (3, 3), f"{at}.R")
        if np.abs(rot @ rot.T - np.eye(3)).max() > 1e-4 or np.linalg.det(rot) < 0:
            raise LightStageFormatError(f"{at}.R: not a rotation matrix")
        _matrix(_require(cam, "t", list, at), (3,), f"{at}.t")
        for key in ("width", "height"):
            if _require(cam, key, int, at) <= 0:
                raise LightStageFormatError(f"{at}.{key}: must be > 0")
    frames = _require(config, "frames", list, where)
    ids = set()
    for n, frame in enumerate(frames):
        at = f"{where}: frames[{n}]"
        frame_id = _require(frame, "id", int, at)
        if frame_id in ids or frame_id < 0:
            raise LightStageFormatError(f"{at}: frame id {frame_id} is negative or used twice")
        ids.add(frame_id)
        if _require(frame, "kind", str, at) not in FRAME_KINDS:
            raise LightStageFormatError(f"{at}: kind {frame['kind']!r}, expected one of {FRAME_KINDS}")


def validate_meta(meta: Mapping[str, np.ndarray], num_vertices: int, where: str) -> None:
    """Check one frame's meta.npz arrays against the format."""
    expected = {
        "light_code": (LIGHT_CODE_SIZE,),
        "head_R": (3, 3),
        "head_t": (3,),
        "vertices": (num_vertices, 3),
    }
    for key, shape in expected.items():
        if key not in meta:
            raise LightStageFormatError(f"{where}: array '{key}' is missing (expected shape {list(shape)})")
        if tuple(meta[key].shape) != shape:
            raise LightStageFormatError(
                f"{where}: array '{key}' has shape {list(meta[key].shape)}, expected {list(shape)}"
            )
        if not np.all(np.isfinite(meta[key])):
            raise LightStageFormatError(f"{where}: array '{key}' has NaN or inf")
