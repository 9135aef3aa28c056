"""Writing registration results into the job folder (conventions.md "Job folder"), frame by frame.

Besides the layout's files, the pipeline keeps its intermediate results there so a rerun resumes at the
first unfinished stage: `landmarks.npz` (detections, per source frame), `init.npz` (step-1 r̃, t̃, z̃ and
losses); the adapted lighting `lighting/` is written by `lighting_store.py`. Every file goes through the job folder's
atomic write and is recorded in its ledger (`wire/ledger.py`), so a resume trusts only what it wrote.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from dlatrack_engine.colour import linear_to_srgb8
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.wire.jobfolder import JobFolder


def save_npz(folder: JobFolder, path: Path, **arrays: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    folder.write_file(path, buffer.getvalue())


def load_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def save_params(folder: JobFolder, path: Path, params: FrameParams, **extra: np.ndarray) -> None:
    save_npz(folder, path, r=params.r.cpu().numpy(), t=params.t.cpu().numpy(), z=params.z.cpu().numpy(), **extra)


def load_params(path: Path, device: torch.device) -> tuple[FrameParams, dict[str, np.ndarray]]:
    data = load_npz(path)
    params = FrameParams(*(torch.as_tensor(data[k], device=device) for k in ("r", "t", "z")))
    return params, data


def texture_png(texture: torch.Tensor) -> np.ndarray:
    """[3, T, T] linear -> [T, T, 3] uint8 sRGB (row 0 = top of the UV image, as the model stores it)."""
    return linear_to_srgb8(texture.detach().permute(1, 2, 0).cpu().numpy())


def write_frame_results(folder: JobFolder, index: int, params: FrameParams, row: int, vertices: torch.Tensor,
                        losses: dict[str, float], texture: torch.Tensor | None = None,
                        relit: torch.Tensor | None = None, overlay: np.ndarray | None = None) -> None:
    """One frame: textures and overlay first, the npz last - its presence is what marks the frame done."""
    if texture is not None:
        folder.write_texture("full", index, texture_png(texture))
    if relit is not None:
        folder.write_texture("relit", index, texture_png(relit))
    if overlay is not None:
        folder.write_overlay(index, overlay)
    R = params.rotation()[row]
    arrays = {
        "vertices": vertices.detach().cpu().numpy(),
        "head_R": R.detach().cpu().numpy(),
        "head_t": params.t[row].detach().cpu().numpy(),
        "r": params.r[row].detach().cpu().numpy(),
        "z": params.z[row].detach().cpu().numpy(),
    }
    arrays.update({f"loss_{k}": np.float32(v) for k, v in losses.items()})
    folder.write_frame(index, arrays)


def overlay_image(frame: np.ndarray, render: np.ndarray, mask: np.ndarray, alpha: float = 0.85) -> np.ndarray:
    """Render over the frame (for people): linear [H, W, 3] images, mask [H, W, 1] -> uint8 sRGB."""
    blend = frame * (1.0 - alpha * mask) + render * (alpha * mask)
    return linear_to_srgb8(blend)


def write_batch(folder: JobFolder, scene, lighting, frames: torch.Tensor, params: FrameParams, terms,
                init_loss: torch.Tensor, rows: list[int], todo: list[int], indices: list[int], overlays: bool = True,
                textures: bool = True) -> None:
    """A solved step-3 batch (clip rows `rows`, lit by `lighting`, its view of those rows), rendered once; the
    frames in `todo` written (`indices`: row -> source frame). `terms`: step 3's loss terms, None for step 1."""
    with torch.no_grad():
        out = scene.render(params, lighting, background=frames)
    for j, row in enumerate(rows):
        if row not in todo:
            continue
        losses = {"landmark": float(init_loss[row])}
        if terms is not None:
            losses.update(pixel=float(terms.pixel[j]), flow=float(terms.flow[j]))
        overlay = None
        if overlays:
            overlay = overlay_image(frames[j].cpu().numpy(), out.image[j].cpu().numpy(), out.mask[j].cpu().numpy())
        maps = (out.texture[j], out.relit_texture[j]) if textures else (None, None)
        write_frame_results(folder, indices[row], params, j, out.vertices[j], losses, *maps, overlay)
