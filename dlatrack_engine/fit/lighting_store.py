"""The one loader and writer of an adapted lighting (step 2's l and φ): a job's `lighting/`, or a lighting
folder reused on another take (`wire/lighting_folder.py` is the format; this side turns it into tensors).

A lighting is tied to the avatar it was adapted for and to the lighting model G it started from: both are
stored as content hashes (sha256 of the weights), and reuse with another avatar, another G or another
lighting kind is refused naming the field, because l and φ mean nothing outside that pair. A time-varying
("sequence") lighting holds one l_t per frame of its take, and is refused on a take of another length.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from dlatrack_engine.avatar.runtime import load_state_strict
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.wire import lighting_folder as fmt
from dlatrack_engine.wire.jobfolder import JobFolder
from dlatrack_engine.wire.lighting_folder import LightingFolderError, LightingInfo


def weights_sha256(module: torch.nn.Module, extra: object = None) -> str:
    """Content hash of a network's weights (names, dtypes, shapes, values) and `extra` (its config)."""
    digest = hashlib.sha256(json.dumps(extra, sort_keys=True, default=str).encode())
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{list(value.shape)}".encode())
        digest.update(value.numpy().tobytes())
    return digest.hexdigest()


def avatar_identity(avatar) -> dict[str, str]:
    """The avatar a lighting belongs to: its DAM (geometry and texture decoder) by content."""
    return {"name": str(avatar.config.get("name", "avatar")), "sha256": weights_sha256(avatar.dam)}


def model_identity(avatar, model: str) -> dict[str, str]:
    """The lighting model a lighting was adapted from: the avatar's pre-trained G (weights + config) for "G"."""
    if model != "G":
        return {"name": model, "sha256": hashlib.sha256(model.encode()).hexdigest()}
    return {"name": "G", "sha256": weights_sha256(avatar.lighting, avatar.lighting.cfg.to_dict())}


@dataclass
class StoredLighting:
    """A read lighting folder: its info, l, and φ's tensors (G only)."""

    root: Path
    info: LightingInfo
    light_code: np.ndarray | None
    weights: dict[str, torch.Tensor] | None

    def network(self, avatar) -> torch.nn.Module | None:
        """φ as a module on the avatar's device (a copy of its G with the adapted weights)."""
        if self.weights is None:
            return None
        module = copy.deepcopy(avatar.lighting)
        prefix = "lighting." if any(k.startswith("lighting.") for k in self.weights) else ""
        load_state_strict(module, {k: v.to(avatar.device) for k, v in self.weights.items()}, prefix,
                          str(self.root / fmt.WEIGHTS_FILE))  # fmt: skip
        return module.eval()

    def video_lighting(self, avatar, renderer) -> VideoLighting:
        """The lighting as registration uses it (step 3, evaluation); a sequence's frames by `at(rows)`."""
        lighting = VideoLighting(self.info.model, avatar, renderer)
        with torch.no_grad():
            if self.light_code is not None:
                size = lighting.code.shape[1]
                code = torch.as_tensor(self.light_code, device=avatar.device)
                need = [self.info.frame_count, size] if self.info.variation == "sequence" else [size]
                if list(code.shape) != need and not (len(need) == 1 and list(code.shape) == [1, size]):
                    raise LightingFolderError(f"{self.root / fmt.CODE_FILE}: has shape {list(code.shape)}, the "
                                              f"{self.info.variation} {self.info.model!r} lighting needs {need}")
                if self.info.variation == "sequence":
                    lighting.set_frame_codes(code)
                else:
                    lighting.code.copy_(code.reshape(1, -1))
            if lighting.network is not None:
                lighting.network = self.network(avatar) or lighting.network
        return lighting


def read(root: Path, reader: fmt.Reader | None = None) -> StoredLighting:
    """Read and check a lighting folder (sha256 of every file against lighting.json)."""
    reader = reader or (lambda path: path.read_bytes())
    return _read_files(root, fmt.read_info(root, reader), reader)


def _read_files(root: Path, info: LightingInfo, reader: fmt.Reader) -> StoredLighting:
    code_bytes = fmt.read_file(root, info, fmt.CODE_FILE, reader)
    weight_bytes = fmt.read_file(root, info, fmt.WEIGHTS_FILE, reader)
    code = None if code_bytes is None else _parse(root / fmt.CODE_FILE, lambda: np.load(io.BytesIO(code_bytes)))
    weights = None if weight_bytes is None else _parse(root / fmt.WEIGHTS_FILE, lambda: load_safetensors(weight_bytes))
    return StoredLighting(root, info, code, weights)


def _parse(path: Path, parse):
    try:
        return parse()
    except Exception as exc:  # numpy and safetensors raise several types for a damaged file
        raise LightingFolderError(f"{path}: unreadable ({exc})") from exc


def check_reusable(root: Path, info: LightingInfo, avatar, model: str) -> None:
    """Refuse a lighting for another avatar, another lighting kind or another pre-trained G."""
    where = root / fmt.INFO_FILE
    if info.legacy:
        raise LightingFolderError(f"{where}: written before lightings could be reused (no field 'avatar'); "
                                  "adapt the lighting again with this dlatrack")  # fmt: skip
    if info.model != model:
        raise LightingFolderError(f"{where}: field 'model' is {info.model!r} but this track uses the "
                                  f"{model!r} lighting model")  # fmt: skip
    mine = avatar_identity(avatar)
    if info.avatar["sha256"] != mine["sha256"]:
        raise LightingFolderError(f"{where}: field 'avatar' is {info.avatar.get('name')!r} (sha256 "
                                  f"{info.avatar['sha256'][:12]}), not this avatar {mine['name']!r} "
                                  f"(sha256 {mine['sha256'][:12]}); adapt the lighting with this avatar")
    ours = model_identity(avatar, model)
    if info.lighting_model["sha256"] != ours["sha256"]:
        raise LightingFolderError(f"{where}: field 'lighting_model' (sha256 "
                                  f"{info.lighting_model['sha256'][:12]}) differs from this avatar's "
                                  f"lighting model (sha256 {ours['sha256'][:12]}): G was retrained since")


def check_frame_count(root: Path, info: LightingInfo, frame_count: int | None) -> None:
    """Refuse a sequence lighting on a take whose selected frame count differs from the one it lights."""
    if info.variation == "sequence" and frame_count is not None and frame_count != info.frame_count:
        raise LightingFolderError(f"{root / fmt.INFO_FILE}: field 'frame_count' is {info.frame_count}: this lighting "
                                  f"changes during its video (variation 'sequence', one light code per frame), but "
                                  f"this take has {frame_count} frames; reuse it only on a take of "
                                  f"{info.frame_count} frames, or adapt the lighting on this take")


def read_reusable(path: str | Path, avatar, model: str, frame_count: int | None = None) -> StoredLighting:
    """A lighting folder (or a job folder's) to reuse on another take, checked for this avatar and model (and,
    for a sequence, the take's `frame_count`) before its files are read."""
    root = fmt.lighting_root(path)
    info = fmt.read_info(root)
    check_reusable(root, info, avatar, model)
    check_frame_count(root, info, frame_count)
    return _read_files(root, info, lambda file: file.read_bytes())


def job_lighting_root(folder: JobFolder) -> Path:
    return folder.root / fmt.LIGHTING_DIR


def read_job(folder: JobFolder, partial: bool = False) -> StoredLighting | None:
    """The job's own lighting (through its ledger), or None when step 2 has not written it. With `partial`,
    a folder without lighting.json (written before it existed, or by hand) gives what it has, as G."""
    root = job_lighting_root(folder)
    if folder.trusted(root / fmt.INFO_FILE):
        return read(root, folder.read_file)
    if not partial or not (folder.light_code_path.is_file() or folder.lighting_weights_path.is_file()):
        return None
    return _read_files(root, LightingInfo(model="G", legacy=True), lambda path: path.read_bytes())


def write(root: Path, lighting: VideoLighting, avatar, writer: fmt.Writer, meta: dict,
          preview_png: bytes | None = None) -> LightingInfo:  # fmt: skip
    """Store a freshly adapted lighting; `meta` holds key_frames, key_source_frames, losses, video (and for a
    sequence: variation, frame_count, source_frames; segments)."""
    files = {fmt.CODE_FILE: _code_bytes(lighting)}
    if lighting.network is not None:
        tensors = {k: v.detach().cpu().contiguous() for k, v in lighting.network.state_dict().items()}
        files[fmt.WEIGHTS_FILE] = save_safetensors(tensors)
    if preview_png is not None:
        files[fmt.PREVIEW_FILE] = preview_png
    info = LightingInfo(model=lighting.kind, avatar=avatar_identity(avatar),
                        lighting_model=model_identity(avatar, lighting.kind), **meta)  # fmt: skip
    return fmt.write_folder(root, info, files, writer)


def copy_into(stored: StoredLighting, root: Path, writer: fmt.Writer,
              lighting: VideoLighting | None = None) -> LightingInfo:
    """Copy a reused lighting into a job (so the job folder stands alone), noting where it came from. With
    `lighting` (φ from `stored`, l refitted on this take: step2.refine_key_poses) its light code replaces the
    stored one; φ and the rest are copied byte for byte."""
    files = {name: fmt.read_file(stored.root, stored.info, name) for name in stored.info.files}
    if lighting is not None and fmt.CODE_FILE in files:
        files[fmt.CODE_FILE] = _code_bytes(lighting)
    info = copy.deepcopy(stored.info)
    info.reused_from = str(stored.root.resolve())
    return fmt.write_folder(root, info, {k: v for k, v in files.items() if v is not None}, writer)


def _code_bytes(lighting: VideoLighting) -> bytes:
    """light_code.npy: l [C], or l_t [N, C] of a sequence."""
    buffer = io.BytesIO()
    code = lighting.frame_codes() if lighting.is_sequence else lighting.light_code()
    np.save(buffer, code.cpu().numpy().astype(np.float32), allow_pickle=False)
    return buffer.getvalue()
