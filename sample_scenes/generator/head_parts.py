"""The untracked parts of the sample head (numpy only): scalp shell, neck, eyeballs, mouth cavity, torso.

Only the face mesh is tracked; these make the subject read as a head. Each part is a closed mesh in the head
frame (metres) with per-vertex linear RGB colours, so Blender needs just one vertex-colour material.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import face_shape as fs
from .albedo import srgb_to_linear
from .subject_params import SubjectParams


@dataclass
class Part:
    name: str
    vertices: np.ndarray  # [V, 3] metres, head frame (or scene frame for static parts)
    faces: np.ndarray  # [F, 3] int32, outward normals
    colours: np.ndarray  # [V, 3] linear RGB
    roughness: float


def _lat_long(n_theta: int, n_phi: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Directions of a latitude-longitude sphere (poles included once) and its triangles."""
    theta = np.linspace(-np.pi, np.pi, n_theta, endpoint=False)
    phi = np.linspace(-np.pi / 2, np.pi / 2, n_phi)[1:-1]
    tt, pp = np.meshgrid(theta, phi)
    dirs = fs.directions(tt, pp).reshape(-1, 3)
    dirs = np.vstack([dirs, [[0, -1, 0], [0, 1, 0]]])
    rows, south, north = len(phi), len(dirs) - 2, len(dirs) - 1
    faces = []
    for j in range(rows - 1):
        for i in range(n_theta):
            a, b = j * n_theta + i, j * n_theta + (i + 1) % n_theta
            c, d = b + n_theta, a + n_theta
            faces += [(a, b, c), (a, c, d)]
    for i in range(n_theta):
        faces.append((south, (i + 1) % n_theta, i))
        top = (rows - 1) * n_theta
        faces.append((north, top + i, top + (i + 1) % n_theta))
    faces_arr = np.array(faces, dtype=np.int32)
    # Orient every triangle outwards (the lat-long winding flips with the theta direction convention).
    tri = dirs[faces_arr]
    outward = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), tri.mean(axis=1))
    faces_arr[outward < 0] = faces_arr[outward < 0][:, ::-1]
    return dirs, faces_arr, np.stack([tt.ravel(), pp.ravel()], axis=1)


def scalp_shell(skin: np.ndarray, hair: np.ndarray, p: SubjectParams) -> Part:
    """The head ellipsoid, pulled in under the face so it never shows through it, with hair on top/back."""
    dirs, faces, params = _lat_long(64, 40)
    theta = np.concatenate([params[:, 0], [0.0, 0.0]])
    phi = np.concatenate([params[:, 1], [-np.pi / 2, np.pi / 2]])
    inside_face = 1.0 - fs.border_taper(theta, phi)
    radius = fs.base_radius(dirs, p) * (1.0 - 0.015 - 0.25 * (1.0 - inside_face))
    points = radius[:, None] * dirs
    y, z = points[:, 1], points[:, 2]
    hair_amount = np.clip(fs.smoothstep(2.5, 5.0, y) * fs.smoothstep(6.5, 3.0, z) + fs.smoothstep(7.5, 9.0, y), 0, 1)
    hair_amount = np.maximum(hair_amount, fs.smoothstep(1.0, -3.0, z) * fs.smoothstep(-6.0, -1.0, y))
    colours = skin * (1 - hair_amount[:, None]) + hair * hair_amount[:, None]
    return Part("scalp", points * 0.01, faces, colours, 0.6)


def ellipsoid(name: str, centre, radii, colour, roughness: float, n: int = 32) -> Part:
    dirs, faces, _ = _lat_long(n, n // 2 + 2)
    points = dirs * np.asarray(radii) + np.asarray(centre)
    return Part(name, points * 0.01, faces, np.broadcast_to(np.asarray(colour, float), points.shape).copy(), roughness)


def eyeball(side: float, iris_colour: np.ndarray, p: SubjectParams) -> Part:
    """An eyeball at the lid sphere's centre, iris facing +Z; colours per vertex on a fine sphere."""
    dirs, faces, _ = _lat_long(48, 34)
    centre = fs.eye_centre(side, p)
    cos_fwd = dirs[:, 2]
    sclera = np.array([0.75, 0.72, 0.68])
    pupil = np.array([0.01, 0.01, 0.01])
    iris = fs.smoothstep(0.80, 0.83, cos_fwd)[:, None]
    dark = fs.smoothstep(0.95, 0.96, cos_fwd)[:, None]
    colours = sclera * (1 - iris) + iris_colour * iris
    colours = colours * (1 - dark) + pupil * dark
    points = centre + fs.EYEBALL_RADIUS * p.eye_scale * dirs
    return Part(f"eye_{'L' if side > 0 else 'R'}", points * 0.01, faces, colours, 0.08)


NECK_Z = -4.5  # cm; far enough back that the neck never covers the chin, even with the jaw open


def neck(skin: np.ndarray) -> Part:
    """A tapered cylinder from inside the head down into the collar, behind the chin."""
    n_around, n_rows = 32, 8
    angle = np.linspace(0, 2 * np.pi, n_around, endpoint=False)
    ys = np.linspace(-8.5, -24.0, n_rows)
    radius = np.interp(ys, [-24.0, -14.0, -8.5], [6.0, 4.2, 3.8])
    ring_x = radius[:, None] * np.sin(angle)
    ring_z = NECK_Z + radius[:, None] * np.cos(angle)
    points = np.stack([ring_x, np.repeat(ys[:, None], n_around, 1), ring_z], axis=-1).reshape(-1, 3)
    faces = []
    for j in range(n_rows - 1):
        for i in range(n_around):
            a, b = j * n_around + i, j * n_around + (i + 1) % n_around
            faces += [(a, c := b + n_around, b), (a, a + n_around, c)]
    faces_arr = np.array(faces, dtype=np.int32)
    tri = points[faces_arr]
    radial = tri.mean(axis=1) - np.array([0, 0, NECK_Z])
    radial[:, 1] = 0
    outward = np.einsum("ij,ij->i", np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), radial)
    faces_arr[outward < 0] = faces_arr[outward < 0][:, ::-1]
    return Part("neck", points * 0.01, faces_arr, np.broadcast_to(skin, points.shape).copy(), 0.5)


def head_parts(skin: np.ndarray, seed: int, params: SubjectParams | None = None) -> list[Part]:
    """Every untracked part that moves with the head (default subject: seed 0's reference face)."""
    p = params if params is not None else SubjectParams()
    rng = np.random.default_rng(seed + 7)
    tint = srgb_to_linear(np.array(p.hair_srgb)) / srgb_to_linear(np.array(SubjectParams().hair_srgb))
    hair = np.array([0.022, 0.011, 0.006]) * rng.uniform(0.8, 1.3) * tint
    iris = np.array([0.10, 0.05, 0.02]) if rng.uniform() < 0.5 else np.array([0.05, 0.09, 0.14])
    mouth_dy, mw, deep = p.mouth_y - SubjectParams().mouth_y, p.mouth_width, p.depth_ratio
    return [
        scalp_shell(skin, hair, p),
        neck(skin * 0.95),
        eyeball(1.0, iris, p),
        eyeball(-1.0, iris, p),
        ellipsoid("mouth_cavity", (0.0, -6.3 + mouth_dy, 4.9 * deep), (2.2 * mw, 1.2, 1.3), (0.08, 0.015, 0.015), 0.5),
        ellipsoid("teeth", (0.0, -6.55 + mouth_dy, 7.25 * deep), (1.6 * mw, 0.35, 0.6), (0.6, 0.57, 0.5), 0.2),
    ]
