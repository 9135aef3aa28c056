"""The lighting folder (docs/conventions.md "Lighting folder"): a video's adapted lighting (step 2's l and φ)
with what it was adapted for, so one adaptation serves every take shot in the same room (issue 27).

    lighting.json    LightingInfo: format, version, variation, model, avatar and lighting-model identities,
                     key frames, losses, and the sha256 of every other file (written last: its presence
                     marks the folder complete)
    light_code.npy   l [C] float32 (C = 150 for G, 27 for SH, 0 for none); a "sequence" lighting (format
                     version 2): l_t [N, C], one row per selected frame of the take it was adapted on
    G.safetensors    φ, the adapted G (model "G" only)
    preview.png      a key frame beside the avatar relit with this lighting (optional)

A job's `lighting/` folder is one; so is a copy of it anywhere. Folders written before this format (no
`format` field) are read as "legacy": a model kind and key frames, no identities, no checksums. Version 1
folders (static only, no `frame_count`/`source_frames`/`segments`) are read as they are.
Torch-free: the add-on lists a scene's lightings with this module.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LIGHTING_FORMAT = "dlatrack-lighting"
LIGHTING_FORMAT_VERSION = 2  # 2: the "sequence" variation and its fields (issue 18)
READABLE_VERSIONS = (1, 2)
LIGHTING_DIR = "lighting"  # inside a job folder
INFO_FILE = "lighting.json"
CODE_FILE = "light_code.npy"
WEIGHTS_FILE = "G.safetensors"
PREVIEW_FILE = "preview.png"
MODELS = ("G", "SH", "none")
# "static": one l and φ for every frame. "sequence" (issue 18): one l_t per frame (φ shared), reusable only
# on a take of the same frame count; readers refuse a variation they do not know rather than misuse it.
VARIATIONS = ("static", "sequence")

Reader = Callable[[Path], bytes]
Writer = Callable[[Path, bytes], Any]


class LightingFolderError(ValueError):
    """A lighting folder is missing, corrupt or not for this avatar/model; the message names file and field."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class LightingInfo:
    """lighting.json. `avatar` / `lighting_model` are {"name"?, "sha256"} identities of what it was adapted for."""

    model: str
    variation: str = "static"
    avatar: dict[str, str] = field(default_factory=dict)
    lighting_model: dict[str, str] = field(default_factory=dict)
    key_frames: list[int] = field(default_factory=list)  # rows of the adapted take's selected frames
    key_source_frames: list[int] = field(default_factory=list)  # the same as video frame indices
    video: str | None = None
    losses: Any = None  # step 2's loss history
    iteration_losses: list[float] = field(default_factory=list)  # step 2's loss at every iteration (report plot)
    files: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    reused_from: str | None = None  # the lighting folder this job copied instead of adapting
    frame_count: int | None = None  # "sequence": the rows of light_code.npy (the take's selected frames)
    source_frames: list[int] = field(default_factory=list)  # "sequence": the video frame index of each row
    segments: list[list[int]] = field(default_factory=list)  # [start, stop) rows between detected lighting cuts
    legacy: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in asdict(self).items() if k != "legacy"}
        return {"format": LIGHTING_FORMAT, "format_version": LIGHTING_FORMAT_VERSION, **data}

    @classmethod
    def from_dict(cls, data: Any, where: str) -> LightingInfo:
        if not isinstance(data, dict):
            raise LightingFolderError(f"{where}: must hold a JSON object")
        model = data.get("model", data.get("kind"))
        if model not in MODELS:
            raise LightingFolderError(f"{where}: field 'model' is {model!r}, expected one of {list(MODELS)}")
        if "format" not in data:  # a job folder from before the format: kind, key frames, losses
            return cls(model=model, key_frames=list(data.get("key_frames", [])),
                       key_source_frames=list(data.get("key_source_frames", [])),
                       losses=data.get("losses"), iteration_losses=list(data.get("iteration_losses", [])),
                       legacy=True)  # fmt: skip
        if data["format"] != LIGHTING_FORMAT:
            raise LightingFolderError(f"{where}: field 'format' is {data['format']!r}, expected {LIGHTING_FORMAT!r}")
        if data.get("format_version") not in READABLE_VERSIONS:
            raise LightingFolderError(f"{where}: field 'format_version' is {data.get('format_version')!r}, "
                                      f"expected one of {list(READABLE_VERSIONS)} (written by a newer dlatrack?)")
        if data.get("variation") not in VARIATIONS:
            raise LightingFolderError(f"{where}: field 'variation' is {data.get('variation')!r}; this dlatrack "
                                      f"reuses only {list(VARIATIONS)} lightings")  # fmt: skip
        for name, kind in (("avatar", dict), ("lighting_model", dict), ("files", dict), ("key_frames", list),
                           ("key_source_frames", list)):  # fmt: skip
            if not isinstance(data.get(name), kind):
                raise LightingFolderError(f"{where}: field '{name}' must be a JSON {kind.__name__}")
        for name in ("avatar", "lighting_model"):
            if not isinstance(data[name].get("sha256"), str):
                raise LightingFolderError(f"{where}: field '{name}.sha256' missing")
        if data["variation"] == "sequence":
            count = data.get("frame_count")
            if not isinstance(count, int) or count < 1:
                raise LightingFolderError(f"{where}: field 'frame_count' is {count!r}; a 'sequence' lighting needs "
                                          "the number of frames it lights")
            if len(data.get("source_frames", [])) != count:
                raise LightingFolderError(f"{where}: field 'source_frames' has {len(data.get('source_frames', []))} "
                                          f"entries, expected frame_count = {count}")
        known = {k for k in cls.__dataclass_fields__ if k != "legacy"}
        return cls(**{k: v for k, v in data.items() if k in known and k != "model"}, model=model)


def lighting_root(path: str | Path) -> Path:
    """The lighting folder of `path`: a lighting folder itself, or a job folder holding `lighting/`."""
    path = Path(path)
    if (path / INFO_FILE).is_file():
        return path
    if (path / LIGHTING_DIR / INFO_FILE).is_file():
        return path / LIGHTING_DIR
    raise LightingFolderError(f"{path}: neither a lighting folder ({INFO_FILE}) nor a job folder with "
                              f"{LIGHTING_DIR}/{INFO_FILE} (did its lighting adaptation finish?)")  # fmt: skip


def _plain_read(path: Path) -> bytes:
    return path.read_bytes()


def read_info(root: Path, read: Reader = _plain_read) -> LightingInfo:
    path = root / INFO_FILE
    try:
        data = json.loads(read(path).decode("utf-8"))
    except FileNotFoundError as exc:
        raise LightingFolderError(f"{path}: missing (the lighting adaptation has not finished)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise LightingFolderError(f"{path}: unreadable JSON ({exc})") from exc
    except ValueError as exc:  # a job folder's reader: the file differs from what the job wrote
        raise LightingFolderError(str(exc)) from exc
    return LightingInfo.from_dict(data, str(path))


def read_file(root: Path, info: LightingInfo, name: str, read: Reader = _plain_read) -> bytes | None:
    """A file of the folder after checking it against lighting.json's checksum; None when not there."""
    path = root / name
    if not info.legacy and name not in info.files:
        return None
    try:
        data = read(path)
    except FileNotFoundError as exc:
        if info.legacy:
            return None
        raise LightingFolderError(f"{path}: missing, but {root / INFO_FILE} field 'files' lists it") from exc
    except (OSError, ValueError) as exc:
        raise LightingFolderError(f"{path}: unreadable ({exc})") from exc
    if not info.legacy and sha256(data) != info.files[name]:
        raise LightingFolderError(f"{path}: its checksum differs from {root / INFO_FILE} field 'files' "
                                  f"(corrupt or changed since it was written)")  # fmt: skip
    return data


def write_folder(root: Path, info: LightingInfo, files: Mapping[str, bytes], write: Writer) -> LightingInfo:
    """Write `files` then lighting.json (with their checksums) last, each through `write` (atomic)."""
    for name, data in files.items():
        write(root / name, data)
    info.files = {name: sha256(data) for name, data in files.items()}
    write(root / INFO_FILE, json.dumps(info.to_dict(), indent=1).encode("utf-8"))
    return info
