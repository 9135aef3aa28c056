"""Wild-clip files on the engine side: mp4 encoding and exporting a short clip for the repository.

Blender writes PNG frames (it has no ffmpeg the engine can rely on); the engine encodes `video.mp4` with
imageio-ffmpeg. `export_clip` cuts a rendered clip down to its first N frames, so the committed demo clip
comes from the same render as the cached one instead of a second, slightly different render.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

STATIC_FOLDER = "clips"  # <out>/clips/<setup>: the static wild clips (Table 1)
VARYING_FOLDER = "varying"  # <out>/varying/<setup>: opt-in time-varying lighting (`--clips varying_...`)


def clip_folders(root: Path) -> list[Path]:
    """Every clip folder of a make-sample output, static and time-varying, in name order per kind."""
    return sorted(p for kind in (STATIC_FOLDER, VARYING_FOLDER) for p in (root / kind).glob("*") if p.is_dir())


def encode_clip_video(folder: Path) -> Path:
    """frames/*.png -> video.mp4 (H.264 through imageio-ffmpeg at the clip's fps)."""
    import imageio.v2 as imageio

    clip = json.loads((folder / "clip.json").read_text())
    frames = sorted((folder / "frames").glob("*.png"))
    if not frames:
        raise FileNotFoundError(f"{folder / 'frames'}: no PNG frames to encode")
    path = folder / "video.mp4"
    with imageio.get_writer(path, fps=clip["fps"], codec="libx264", quality=8, macro_block_size=16) as writer:
        for frame in frames:
            writer.append_data(imageio.imread(frame))
    return path


def export_clip(source: Path, target: Path, frames: int) -> Path:
    """Copy the first `frames` frames of clip `source` (PNGs, masks, ground truth) to `target` and re-encode."""
    clip = json.loads((source / "clip.json").read_text())
    if frames > clip["frame_count"]:
        raise ValueError(f"{source}: has {clip['frame_count']} frames, cannot export {frames}")
    if target.exists():
        shutil.rmtree(target)
    for sub in ("frames", "masks"):
        (target / sub).mkdir(parents=True)
        for k in range(frames):
            shutil.copy2(source / sub / f"{k:06d}.png", target / sub / f"{k:06d}.png")
    with np.load(source / "gt.npz") as gt:
        static = ("K", "expression_names")
        per_frame = {k: v[:frames] for k, v in gt.items() if k not in static}
        rest = {k: v for k, v in gt.items() if k in static}
    np.savez_compressed(target / "gt.npz", **per_frame, **rest)
    shutil.copy2(source / "topology.npz", target / "topology.npz")
    clip["frame_count"] = frames
    clip["exported_from"] = f"{source.name} (first {frames} frames)"
    (target / "clip.json").write_text(json.dumps(clip, indent=1))
    encode_clip_video(target)
    return target
