"""Put the sample subject into the Blender scene: textures on disk, face mesh, untracked parts (bpy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlatrack_engine.wire.png import encode_png

from . import bpy_scene
from .albedo import linear_to_srgb, make_skin_textures
from .expressions import ExpressionModel, build_expression_model
from .face_model import FaceMesh, build_face_mesh
from .head_parts import head_parts
from .subject_params import SubjectParams


@dataclass
class Subject:
    mesh: FaceMesh
    expressions: ExpressionModel
    face: object  # bpy face object
    root: object  # bpy empty: the head, posed per frame
    texture_paths: dict


def write_textures(folder: Path, size: int, seed: int, params: SubjectParams) -> tuple[dict, np.ndarray]:
    """Albedo (8-bit sRGB), roughness and specular (8-bit linear) PNGs; returns paths and mean skin tone."""
    textures = make_skin_textures(size, seed, params)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {key: folder / f"{key}.png" for key in ("albedo", "roughness", "specular")}
    paths["albedo"].write_bytes(encode_png((linear_to_srgb(textures.albedo) * 255 + 0.5).astype(np.uint8)))
    paths["roughness"].write_bytes(encode_png((textures.roughness * 255 + 0.5).astype(np.uint8)))
    paths["specular"].write_bytes(encode_png((textures.specular * 255 + 0.5).astype(np.uint8)))
    centre = textures.albedo[size // 3 : 2 * size // 3, size // 6 : size // 3].reshape(-1, 3)  # a cheek
    return paths, np.median(centre, axis=0)


def build_subject(texture_folder: Path, texture_size: int, seed: int, subject_seed: int = 0) -> Subject:
    """Create the head (face + parts) parented to one posable empty; the face starts at the neutral.
    `subject_seed` picks the person (0: the reference face), `seed` the texture noise."""
    params = SubjectParams.from_seed(subject_seed)
    mesh = build_face_mesh(params)
    model = build_expression_model(mesh)
    paths, skin = write_textures(texture_folder, texture_size, seed, params)
    root = bpy_scene.add_head_root()
    face = bpy_scene.add_face(mesh.neutral * 0.01, mesh.faces, mesh.uvs, paths, parent=root)
    for part in head_parts(skin, seed, params):
        bpy_scene.add_part(part, parent=root)
    return Subject(mesh=mesh, expressions=model, face=face, root=root, texture_paths=paths)


def pose_subject(subject: Subject, weights: np.ndarray, head_R: np.ndarray, head_t: np.ndarray) -> np.ndarray:
    """Set expression and head pose; returns the face vertices in the head frame (metres)."""
    vertices = subject.expressions.evaluate(weights)
    bpy_scene.set_mesh_vertices(subject.face, vertices)
    bpy_scene.set_pose(subject.root, head_R, head_t)
    return vertices
