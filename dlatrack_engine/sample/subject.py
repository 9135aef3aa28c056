"""The committed subject files: topology and true textures, regenerated from the numpy generator.

`sample_scenes/subject/` holds what later stages need without rendering (the tracked topology with its
landmarks, the ground-truth albedo/roughness/specular). They are derived, so a test checks they still match
the generator; `dlatrack make-sample --write-subject` rewrites them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from .. import paths
from ..wire.png import encode_png

SUBJECT_DIR = paths.SAMPLE_SCENES / "subject"


def _generator():
    """The generator package (plain numpy modules under sample_scenes/, shared with Blender's side)."""
    if str(paths.REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(paths.REPO_ROOT))
    from sample_scenes.generator import albedo, face_model

    return face_model, albedo


def subject_topology() -> dict[str, np.ndarray]:
    face_model, _ = _generator()
    return face_model.build_face_mesh().topology_arrays()


def write_subject(folder: Path = SUBJECT_DIR, seed: int = 0, texture_size: int = 512) -> Path:
    """Write topology.npz and the albedo (sRGB), roughness and specular PNGs of the seed's subject."""
    _, albedo = _generator()
    folder.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(folder / "topology.npz", **subject_topology())
    textures = albedo.make_skin_textures(texture_size, seed)
    srgb = albedo.linear_to_srgb(textures.albedo)
    (folder / "albedo.png").write_bytes(encode_png((srgb * 255 + 0.5).astype(np.uint8)))
    (folder / "roughness.png").write_bytes(encode_png((textures.roughness * 255 + 0.5).astype(np.uint8)))
    (folder / "specular.png").write_bytes(encode_png((textures.specular * 255 + 0.5).astype(np.uint8)))
    return folder
