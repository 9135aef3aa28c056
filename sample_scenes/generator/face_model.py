"""The sample subject's tracked face mesh: grid topology, UVs, open eyes and iBUG-68 landmarks (numpy only).

The mesh is a regular grid over the (theta, phi) parameters of `face_shape`, denser near the centre of
the face. Two kinds of slits are cut along grid rows by duplicating the row's vertices: one for the mouth
(jaw open separates the lips) and one per eye (the eyelids open around the eyeball; a blink closes them
exactly). UVs are the grid coordinates scaled to [0, 1] (v up, conventions.md), so texel <-> surface
point is an analytic map that the albedo generator uses as well.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import face_shape as fs
from .subject_params import SubjectParams

GRID_COLUMNS = 72
GRID_ROWS = 68
CENTRE_DENSITY = 0.55  # theta(s) = theta_max * (a s + (1 - a) s^3): smaller a = denser centre
EYE_OPEN_UPPER = 0.5  # radians the upper lid turns up around the eye centre (must stay < EYE_FALLOFF)
EYE_OPEN_LOWER = 0.22
EYE_FALLOFF = 0.55


@dataclass
class FaceMesh:
    """Everything about the tracked face mesh; lengths in cm except `topology_arrays` (metres)."""

    theta: np.ndarray  # [V] parameters of each vertex (duplicates copy their original's)
    phi: np.ndarray  # [V]
    uvs: np.ndarray  # [V, 2]
    faces: np.ndarray  # [F, 3] int32
    closed: np.ndarray  # [V, 3] cm, eyes closed
    neutral: np.ndarray  # [V, 3] cm, eyes open (the rest pose)
    duplicate: np.ndarray  # [V] bool: the lower-side copy of a slit vertex (lower lid / lower lip edge)
    slit_row: dict  # "mouth" | "eye" -> grid row index
    row_phi: np.ndarray  # [GRID_ROWS] elevation of each grid row
    landmark_faces: np.ndarray  # [68] int32
    landmark_barycentrics: np.ndarray  # [68, 3] float32
    params: SubjectParams  # whose face this is

    def topology_arrays(self) -> dict[str, np.ndarray]:
        """The six arrays of conventions.md "Topology" (neutral in metres, UVs shared with vertices)."""
        return {
            "faces": self.faces.astype(np.int32),
            "uv_faces": self.faces.astype(np.int32),
            "uvs": self.uvs.astype(np.float32),
            "neutral": (self.neutral * 0.01).astype(np.float32),
            "landmark_faces": self.landmark_faces.astype(np.int32),
            "landmark_barycentrics": self.landmark_barycentrics.astype(np.float32),
        }


def theta_of_u(u: np.ndarray) -> np.ndarray:
    """Azimuth for texture coordinate u in [0, 1] (denser sampling near the face centre)."""
    s = 2.0 * np.asarray(u, np.float64) - 1.0
    return fs.THETA_RANGE[1] * (CENTRE_DENSITY * s + (1.0 - CENTRE_DENSITY) * s**3)


def row_phis(p: SubjectParams) -> np.ndarray:
    """Elevation of each grid row: piecewise uniform with rows exactly on the mouth and eye lines."""
    p0, p1 = fs.PHI_RANGE
    mouth, eye = fs.front_phi(p.mouth_y, p), fs.front_phi(p.eye_y, p)
    knots = np.array([p0, mouth, eye, p1])
    counts = np.round(np.diff(knots) / (p1 - p0) * (GRID_ROWS - 1)).astype(int)
    counts[-1] = GRID_ROWS - 1 - counts[:-1].sum()
    rows = [np.linspace(knots[k], knots[k + 1], counts[k] + 1)[:-1] for k in range(3)]
    return np.concatenate([*rows, [p1]])


def phi_of_v(v: np.ndarray, p: SubjectParams) -> np.ndarray:
    """Elevation for texture coordinate v in [0, 1] (the rows' piecewise-linear map)."""
    rows = row_phis(p)
    return np.interp(np.asarray(v, np.float64) * (GRID_ROWS - 1), np.arange(GRID_ROWS), rows)


def _open_eyes(points: np.ndarray, lower: np.ndarray, p: SubjectParams) -> np.ndarray:
    """Turn the lids away from the eye slit around each eye centre (rotation about X keeps them on the lid
    sphere); the falloff keeps the map monotone so no triangle folds."""
    out = points.copy()
    for side in (-1.0, 1.0):
        centre = fs.eye_centre(side, p)
        q = points - centre
        lateral = np.clip(1.0 - ((q[:, 0]) / (fs.EYE_HALF_WIDTH * p.eye_scale)) ** 2, 0.0, None) ** 0.8
        near = fs.smoothstep(2.6 * p.eye_scale, 1.8 * p.eye_scale, np.linalg.norm(q, axis=1)) * (q[:, 2] > 0)
        beta = np.arctan2(q[:, 1], q[:, 2])
        amount = np.where(lower, -EYE_OPEN_LOWER, EYE_OPEN_UPPER) * lateral * near
        beta_new = beta + amount * np.exp(-np.abs(beta) / EYE_FALLOFF)
        rho = np.hypot(q[:, 1], q[:, 2])
        moved = np.stack([q[:, 0], rho * np.sin(beta_new), rho * np.cos(beta_new)], axis=1) + centre
        out = np.where((amount != 0)[:, None], moved, out)
    return out


def _slit_columns(row_points: np.ndarray, centre_x: float, half_width: float) -> np.ndarray:
    return np.nonzero(np.abs(row_points[:, 0] - centre_x) < half_width)[0]


def _cut_slits(grid: np.ndarray, index: np.ndarray, mouth_row: int, eye_row: int, p: SubjectParams):
    """Duplicate the mouth's and eyes' slit vertices: returns the vertex index each grid point has for the
    faces below it (the duplicate on a slit) and the original of every duplicate."""
    eye_half = fs.EYE_HALF_WIDTH * p.eye_scale
    slit_cols = {
        "mouth": [(mouth_row, _slit_columns(grid[mouth_row], 0.0, fs.MOUTH_HALF_WIDTH * p.mouth_width))],
        "eye": [(eye_row, _slit_columns(grid[eye_row], side * p.eye_x, eye_half)) for side in (-1.0, 1.0)],
    }
    lower_index = index.copy()  # what faces below a slit use for the slit row
    dup_of: list[int] = []
    for entries in slit_cols.values():
        for row, cols in entries:
            for col in cols:
                lower_index[row, col] = index.size + len(dup_of)
                dup_of.append(int(index[row, col]))
    return lower_index, np.array(dup_of, dtype=np.int64)


def build_face_mesh(params: SubjectParams | None = None) -> FaceMesh:
    """Build the tracked face mesh of a subject (default: the reference face, subject seed 0); the same
    grid, slits and landmark order for every subject, only the surface under them changes."""
    p = params if params is not None else SubjectParams()
    nu, nv = GRID_COLUMNS, GRID_ROWS
    us = np.linspace(0.0, 1.0, nu)
    vs = np.linspace(0.0, 1.0, nv)
    thetas, phis = theta_of_u(us), row_phis(p)
    tt, pp = np.meshgrid(thetas, phis)  # [nv, nu]
    grid = fs.face_points(tt, pp, p)
    mouth_row = int(np.argmin(np.abs(phis - fs.front_phi(p.mouth_y, p))))
    eye_row = int(np.argmin(np.abs(phis - fs.front_phi(p.eye_y, p))))

    index = np.arange(nv * nu).reshape(nv, nu)
    lower_index, dup = _cut_slits(grid, index, mouth_row, eye_row, p)

    faces, face_of_cell = [], {}
    for j in range(nv - 1):
        top = lower_index[j + 1]  # the row above this quad row, as seen from below
        for i in range(nu - 1):
            a, b, c, d = index[j, i], index[j, i + 1], top[i + 1], top[i]
            face_of_cell[(i, j)] = len(faces)
            if i < (nu - 1) // 2:  # diagonals mirrored about the centre line keep the mesh symmetric
                faces += [(a, b, c), (a, c, d)]
            else:
                faces += [(a, b, d), (b, c, d)]
    faces_arr = np.array(faces, dtype=np.int32)

    base_theta, base_phi = tt.ravel(), pp.ravel()
    theta = np.concatenate([base_theta, base_theta[dup]])
    phi = np.concatenate([base_phi, base_phi[dup]])
    uu, vv = np.meshgrid(us, vs)
    base_uv = np.stack([uu.ravel(), vv.ravel()], axis=1)
    uvs = np.concatenate([base_uv, base_uv[dup]])
    closed = np.concatenate([grid.reshape(-1, 3), grid.reshape(-1, 3)[dup]])
    duplicate = np.zeros(len(theta), dtype=bool)
    duplicate[nv * nu :] = True
    below_eyes = duplicate | (np.concatenate([np.arange(nv * nu) // nu, np.zeros(len(dup), int)]) < eye_row)
    neutral = _open_eyes(closed, below_eyes, p)

    lm_faces, lm_bary = _landmarks(p, phis, mouth_row, eye_row, face_of_cell)
    return FaceMesh(
        theta=theta,
        phi=phi,
        uvs=uvs,
        faces=faces_arr,
        closed=closed,
        neutral=neutral,
        duplicate=duplicate,
        slit_row={"mouth": mouth_row, "eye": eye_row},
        row_phi=phis,
        landmark_faces=lm_faces,
        landmark_barycentrics=lm_bary,
        params=p,
    )


# iBUG-68 targets in front-projected cm (X to the subject's left; point 0 is on the subject's right).
# The third field says which side of a slit the point lies on: "" (not on a slit), "up" or "low".
_MIRROR_JAW = [(-7.0, 0.3), (-6.9, -1.6), (-6.7, -3.5), (-6.3, -5.3), (-5.6, -7.0), (-4.6, -8.5),
               (-3.4, -9.7), (-1.8, -10.6)]  # fmt: skip
_BROW_R = [(-5.2, 2.6), (-4.3, 3.3), (-3.3, 3.6), (-2.3, 3.5), (-1.3, 3.1)]


def _jaw_scale(y: float, p: SubjectParams) -> float:
    """How much wider than the reference face this face is at height `y` of the reference jaw line."""
    ref = SubjectParams()
    w = float(fs.smoothstep(0.0, -0.85, y / ref.head_b))
    return p.head_a * (1.0 - p.jaw_narrowing * w) / (ref.head_a * (1.0 - ref.jaw_narrowing * w))


def landmark_targets(p: SubjectParams) -> list[tuple[float, float, str]]:
    """The 68 iBUG points as (X, Y, slit side); eye and inner-lip points lie on their slit rows.

    Authored on the reference face and moved with this face's features: the jaw line with the head's
    width and height, brows and eyes with the eyes, the nose with its length and width, lips with the mouth."""
    ex, ey, m, es = p.eye_x, p.eye_y, p.mouth_y, p.eye_scale
    hr, nl, nw, mw = p.height_ratio, p.nose_length, p.nose_width, p.mouth_width
    jaw = [(x * _jaw_scale(y, p), y * hr) for x, y in _MIRROR_JAW]
    pts: list[tuple[float, float, str]] = [(x, y, "") for x, y in jaw]
    pts += [(0.0, -10.9 * hr, "")] + [(-x, y, "") for x, y in reversed(jaw)]  # 0-16 jaw
    brow = [(x * p.eye_spread, y + p.eye_dy) for x, y in _BROW_R]
    pts += [(x, y, "") for x, y in brow] + [(-x, y, "") for x, y in reversed(brow)]  # 17-26 brows
    pts += [(0.0, 1.6 * nl, ""), (0.0, 0.0, ""), (0.0, -1.6 * nl, ""), (0.0, -3.4 * nl, "")]  # 27-30 nose bridge
    pts += [(x * nw, y * nl, "") for x, y in ((-1.3, -4.5), (-0.7, -4.7), (0.0, -4.85), (0.7, -4.7), (1.3, -4.5))]
    hw, inner = fs.EYE_HALF_WIDTH * es - 0.05, 0.45 * es
    for cx in (-ex, ex):  # 36-41 right eye, 42-47 left eye: corner, 2 upper, corner, 2 lower
        first, last = (cx - hw, cx + hw)
        pts += [(first, ey, "up"), (cx - inner, ey, "up"), (cx + inner, ey, "up"), (last, ey, "up")]
        pts += [(cx + inner, ey, "low"), (cx - inner, ey, "low")]
    lips = [
        (-2.45, m, "up"),
        (-1.6, -6.15, ""),
        (-0.7, -5.8, ""),
        (0.0, -5.9, ""),
        (0.7, -5.8, ""),
        (1.6, -6.15, ""),
        (2.45, m, "up"),
    ]  # 48-54 outer upper lip
    lips += [(1.6, -7.4, ""), (0.8, -7.75, ""), (0.0, -7.8, ""), (-0.8, -7.75, ""), (-1.6, -7.4, "")]
    pts += [(x * mw, p.lip_y(y) if not side else y, side) for x, y, side in lips]
    pts += [(x * mw, m, "up") for x in (-2.3, -0.8, 0.0, 0.8, 2.3)]  # 60-64 inner upper lip
    pts += [(x * mw, m, "low") for x in (0.8, 0.0, -0.8)]  # 65-67 inner lower lip
    return pts


def _cell_barycentric(fx: float, fy: float, mirrored: bool) -> tuple[int, list[tuple[str, float]]]:
    """Which of the cell's two triangles holds (fx, fy) in [0,1]^2, and its corner weights."""
    if not mirrored:
        if fx >= fy:
            return 0, [("a", 1 - fx), ("b", fx - fy), ("c", fy)]
        return 1, [("a", 1 - fy), ("c", fx), ("d", fy - fx)]
    if fx + fy <= 1:
        return 0, [("a", 1 - fx - fy), ("b", fx), ("d", fy)]
    return 1, [("b", 1 - fy), ("c", fx + fy - 1), ("d", 1 - fx)]


_TRI_CORNERS = {(False, 0): "abc", (False, 1): "acd", (True, 0): "abd", (True, 1): "bcd"}


def _landmarks(p: SubjectParams, phis, mouth_row, eye_row, face_of_cell):
    nu = GRID_COLUMNS
    targets = landmark_targets(p)
    params = fs.find_parameters(np.array([(x, y) for x, y, _ in targets]), p)
    fine_u = np.linspace(0.0, 1.0, 20001)
    col_of_theta = (fine_u * (nu - 1), theta_of_u(fine_u))
    faces, barys = [], []
    for (x, _, side), (theta, phi) in zip(targets, params, strict=True):
        if side:
            slit = (
                mouth_row
                if abs(x) < fs.MOUTH_HALF_WIDTH * p.mouth_width + 0.2 and phi < phis[eye_row] - 0.05
                else eye_row
            )
            phi = phis[slit]
        fi = float(np.interp(theta, col_of_theta[1], col_of_theta[0]))
        fj = float(np.interp(phi, phis, np.arange(len(phis))))
        i = min(int(fi), nu - 2)
        j = min(round(fj) if side else int(fj), len(phis) - 2)
        if side == "low":
            j -= 1
        fx, fy = fi - i, (1.0 if side == "low" else 0.0) if side else fj - j
        mirrored = i >= (nu - 1) // 2
        which, weights = _cell_barycentric(fx, fy, mirrored)
        corners = _TRI_CORNERS[(mirrored, which)]
        faces.append(face_of_cell[(i, j)] + which)
        w = dict(weights)
        barys.append([max(w[c], 0.0) for c in corners])
    bary = np.array(barys, dtype=np.float64)
    bary /= bary.sum(axis=1, keepdims=True)
    return np.array(faces, dtype=np.int32), bary.astype(np.float32)


def landmark_points(vertices: np.ndarray, faces: np.ndarray, lm_faces: np.ndarray, lm_bary: np.ndarray):
    """Landmark positions `[..., 68, 3]` of meshes `vertices [..., V, 3]` (barycentric interpolation)."""
    corners = vertices[..., faces[lm_faces], :]  # [..., 68, 3, 3]
    return np.einsum("...lkc,lk->...lc", corners, lm_bary)
