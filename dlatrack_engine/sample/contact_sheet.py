"""A contact sheet PNG so a person can look at the sample data: views x lighting patterns, plus the clips.

Top block: one row per light-stage camera; columns are the first step's fully-lit image, its mask and its
pattern images (brightened by 25 / lit groups: a pattern carries a few 50ths of the light, from one side).
Bottom row: the middle frame of every wild clip, the time-varying ones included. Linear images are shown
through the sRGB transfer function.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from ..lightstage import format as fmt
from ..lightstage.reader import LightStageDataset
from .clips import clip_folders

TILE = 128


def _srgb8(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear, 0.0, 1.0)
    srgb = np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)
    return (srgb * 255 + 0.5).astype(np.uint8)


def _tile(rgb8: np.ndarray, label: str) -> np.ndarray:
    tile = cv2.resize(rgb8, (TILE, TILE), interpolation=cv2.INTER_AREA)
    tile = np.ascontiguousarray(tile)
    cv2.putText(tile, label, (3, TILE - 5), cv2.FONT_HERSHEY_SIMPLEX, 0.33, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def _row(tiles: list[np.ndarray], columns: int) -> np.ndarray:
    tiles = tiles + [np.zeros((TILE, TILE, 3), np.uint8)] * (columns - len(tiles))
    return np.concatenate(tiles, axis=1)


def make_contact_sheet(root: str | Path, out_path: str | Path, max_groups: int = 6) -> Path:
    """Write the sheet for a make-sample output folder (`lightstage/`, `clips/`, `varying/`) to `out_path`."""
    root = Path(root)
    rows: list[list[np.ndarray]] = []
    stage_root = root / "lightstage"
    if (stage_root / "dataset.json").exists():
        dataset = LightStageDataset(stage_root)
        first_step = dataset.frames[0].get("step", 0)
        step_frames = [f for f in dataset.frames if f.get("step", 0) == first_step]
        full = next(f["id"] for f in step_frames if f["kind"] == "full")
        groups = [f for f in step_frames if f["kind"] == "group"]
        if len(groups) < max_groups:  # show more patterns from later steps
            groups += [f for f in dataset.frames if f["kind"] == "group" and f not in groups]
        groups = groups[:max_groups]
        for cam in dataset.cameras:
            mask = dataset.mask(full, cam.name)
            tiles = [
                _tile(_srgb8(dataset.image(full, cam.name)), f"{cam.name} full"),
                _tile(np.repeat(mask[..., None].astype(np.uint8) * 255, 3, axis=2), "mask"),
            ]
            for frame in groups:
                lit = frame.get("groups", [])
                gain = 0.5 * fmt.NUM_LIGHT_GROUPS / max(len(lit), 1)
                label = f"groups {','.join(str(g) for g in lit)} x{gain:.0f}"
                tiles.append(_tile(_srgb8(dataset.image(frame["id"], cam.name) * gain), label))
            rows.append(tiles)
    clip_tiles = []
    for clip in clip_folders(root):
        frames = sorted((clip / "frames").glob("*.png"))
        if frames:
            image = cv2.imread(str(frames[len(frames) // 2]))[..., ::-1]
            name = json.loads((clip / "clip.json").read_text()).get("name", clip.name)
            clip_tiles.append(_tile(image, name))
    if clip_tiles:
        rows.append(clip_tiles)
    if not rows:
        raise FileNotFoundError(f"{root}: none of lightstage/dataset.json, clips/*/frames, varying/*/frames found")
    columns = max(len(r) for r in rows)
    sheet = np.concatenate([_row(r, columns) for r in rows], axis=0)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out_path), sheet[..., ::-1]):
        raise OSError(f"could not write contact sheet {out_path}")
    return out_path
