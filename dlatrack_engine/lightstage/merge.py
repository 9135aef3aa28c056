"""Merge two captures of the same rig into one dataset (e.g. a session extended by a later render or shoot).

The cameras, exposure scale and topology must agree exactly; frame ids must not collide. Frames (and their
UV textures, if any) are copied, dataset.json gets the union of the frame lists and summed timings.
numpy + stdlib only, like the writer.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..wire.atomic import atomic_write_bytes
from . import format as fmt


def _load(root: Path) -> dict:
    path = root / fmt.DATASET_JSON
    config = json.loads(path.read_text())
    fmt.validate_dataset_json(config, str(path))
    return config


def merge_datasets(target: str | os.PathLike[str], source: str | os.PathLike[str]) -> int:
    """Copy `source`'s frames into `target` (both datasets); returns the number of frames added."""
    target, source = Path(target), Path(source)
    dst, src = _load(target), _load(source)
    for key in ("cameras", "exposure_scale", "num_light_groups"):
        if dst[key] != src[key]:
            raise fmt.LightStageFormatError(f"{source}: field '{key}' differs from {target}; cannot merge")
    with np.load(target / dst["topology"]) as a, np.load(source / src["topology"]) as b:
        if set(a.files) != set(b.files) or any(not np.array_equal(a[k], b[k]) for k in a.files):
            raise fmt.LightStageFormatError(f"{source}: topology differs from {target}'s; cannot merge")
    existing = {f["id"] for f in dst["frames"]}
    clashes = sorted(existing & {f["id"] for f in src["frames"]})
    if clashes:
        raise fmt.LightStageFormatError(f"{source}: frame ids {clashes[:5]} already exist in {target}")
    for frame in src["frames"]:
        for folder in (fmt.frame_dir(frame["id"]), fmt.uv_dir(frame["id"])):
            if (source / folder).exists():
                shutil.copytree(source / folder, target / folder)
    dst["frames"] = sorted(dst["frames"] + src["frames"], key=lambda f: f["id"])
    if "timing" in dst and "timing" in src:
        dst["timing"] = {k: round(dst["timing"].get(k, 0) + src["timing"].get(k, 0), 2) for k in dst["timing"]}
    dst.pop("uv_textures", None)  # re-run the unwrap: the frame list changed
    fmt.validate_dataset_json(dst, str(target / fmt.DATASET_JSON))
    atomic_write_bytes(target / fmt.DATASET_JSON, json.dumps(dst, indent=1).encode("utf-8"))
    return len(src["frames"])
