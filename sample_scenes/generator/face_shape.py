"""The sample subject's face surface as a radial field over the sphere of directions (numpy only).

The face is authored, not scanned: a head-shaped ellipsoid whose radius is modulated by smooth features
(nose, eye sockets, lips, chin, cheekbones, brow ridge). Working in directions (azimuth `theta`, elevation
`phi`) around the head centre gives a surface that is a graph over the sphere, so a regular (theta, phi)
grid is a clean mesh and, scaled to [0, 1]^2, a low-distortion UV layout at the same time.

Lengths here are centimetres (the head is easier to author in cm); `face_model` converts to metres.
Coordinates are the head frame of conventions.md: +X subject's left, +Y up, +Z out of the face.
Who the face belongs to (proportions, feature sizes) comes from a `SubjectParams` (subject_params.py); the
numbers below are the reference face's (subject seed 0), which the parameters scale and shift.
Runs in Blender's Python too, so only numpy (1.26 or 2.x) and the stdlib are used.
"""

from __future__ import annotations

import numpy as np

from .subject_params import REFERENCE_EYE, REFERENCE_HEAD, SubjectParams

# Reference eye and mouth sizes (cm), scaled by `SubjectParams.eye_scale` / `mouth_width`.
EYE_HALF_WIDTH = 1.45
EYE_LID_RADIUS = 1.35  # lids wrap a sphere this big around the eye centre
EYEBALL_RADIUS = 1.2
EYE_CENTRE_Z = 7.35
MOUTH_HALF_WIDTH = 2.4

# Parametric domain of the tracked face mesh (radians).
THETA_RANGE = (np.radians(-82.0), np.radians(82.0))
PHI_RANGE = (np.radians(-72.0), np.radians(58.0))


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step 0 -> 1 between the edges (edge0 > edge1 gives a falling step)."""
    t = np.clip((np.asarray(x, dtype=np.float64) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def directions(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """Unit vectors for azimuth theta (towards +X) and elevation phi (towards +Y); theta = phi = 0 is +Z."""
    theta, phi = np.broadcast_arrays(np.asarray(theta, np.float64), np.asarray(phi, np.float64))
    return np.stack([np.sin(theta) * np.cos(phi), np.sin(phi), np.cos(theta) * np.cos(phi)], axis=-1)


def base_radius(d: np.ndarray, p: SubjectParams) -> np.ndarray:
    """Radius of the head ellipsoid along unit directions `d [..., 3]`, narrower at the jaw."""
    a = p.head_a * (1.0 - p.jaw_narrowing * smoothstep(0.0, -0.85, d[..., 1]))
    return 1.0 / np.sqrt((d[..., 0] / a) ** 2 + (d[..., 1] / p.head_b) ** 2 + (d[..., 2] / p.head_c) ** 2)


def _gauss(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float, px: int = 2) -> np.ndarray:
    return np.exp(-0.5 * (np.abs((x - cx) / sx) ** px + ((y - cy) / sy) ** 2))


def feature_offsets(x: np.ndarray, y: np.ndarray, p: SubjectParams) -> np.ndarray:
    """Radial offset (cm) of the facial features at front-projected position (x, y).

    The terms are summed in the reference face's order so subject seed 0 stays bit-exact."""
    length, width, wide, full, mw, lip = (
        p.nose_length,
        p.nose_width,
        p.width_ratio,
        p.lip_fullness,
        p.mouth_width,
        p.lip_y,
    )
    depth = np.array([-1.8, -0.5, 1.5, 3.4, 4.3, 4.9]) * length
    nose_h = np.interp(-y, depth, np.array([0.25, 0.5, 1.2, 2.1, 1.3, 0.0]) * p.nose_projection, left=0.0, right=0.0)
    nose_w = np.interp(-y, depth[[0, 2, 3, 4]], np.array([0.55, 0.65, 0.85, 1.0]) * width)
    off = nose_h * np.exp(-0.5 * (x / nose_w) ** 2)
    for s in (-1.0, 1.0):
        off = off + 0.75 * width * _gauss(x, y, s * 1.25 * width, -4.1 * length, 0.55, 0.5)  # alae (nostril wings)
        off = off - 0.9 * _gauss(x, y, s * p.eye_x, p.eye_y, 1.7 * p.eye_scale, 1.4 * p.eye_scale)  # eye sockets
        off = off + 0.35 * p.brow * _gauss(x, y, s * 3.0 * p.eye_spread, 2.9 + p.eye_dy, 2.0, 0.8)  # brow ridge
        off = off + 0.45 * p.cheekbones * _gauss(x, y, s * 4.6 * wide, -1.6, 1.5, 1.3)  # cheekbones
        off = off - 0.3 * _gauss(x, y, s * 6.3 * wide, 2.5, 1.0, 1.5)  # temples
    off = off + 0.15 * _gauss(x, y, 0.0, 2.0 + p.eye_dy, 1.0, 1.0)  # glabella
    off = off + 0.45 * full * _gauss(x, y, 0.0, lip(-6.3), 2.0 * mw, 0.45 * full, px=4)  # upper lip
    off = (
        off + 0.25 * _gauss(x, y, 0.0, lip(-5.5), 0.9, 0.8) - 0.08 * _gauss(x, y, 0.0, lip(-5.6), 0.25, 0.7)
    )  # philtrum
    off = off + 0.5 * full * _gauss(x, y, 0.0, lip(-7.35), 1.9 * mw, 0.45 * full, px=4)  # lower lip
    off = off - 0.15 * _gauss(x, y, 0.0, p.mouth_y, 2.3 * mw, 0.12, px=4)  # where the lips meet
    off = off - 0.25 * _gauss(x, y, 0.0, p.lower_face_y(-8.5), 1.8, 0.4)  # mentolabial sulcus
    off = off + 0.7 * p.chin * _gauss(x, y, 0.0, p.lower_face_y(-9.7), 1.6, 1.1)  # chin
    return off


def _lid_sphere_hit(d: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """Distance along `d` to the far intersection with a sphere (NaN where the ray misses)."""
    b = d @ centre
    disc = b * b - (centre @ centre - radius * radius)
    return np.where(disc >= 0.0, b + np.sqrt(np.maximum(disc, 0.0)), np.nan)


def eye_centre(side: float, p: SubjectParams) -> np.ndarray:
    """Eye (eyeball and lid sphere) centre in cm; side +1 is the subject's left eye (+X).

    It sits as deep under the ellipsoid's front as on the reference face, and a bigger eye sits deeper so
    the lids stick out as far."""
    front = np.sqrt(1.0 - (p.eye_x / p.head_a) ** 2) / np.sqrt(1.0 - (REFERENCE_EYE[0] / REFERENCE_HEAD[0]) ** 2)
    z = EYE_CENTRE_Z * p.depth_ratio * front - EYE_LID_RADIUS * (p.eye_scale - 1.0)
    return np.array([side * p.eye_x, p.eye_y, z])


def surface_radius(d: np.ndarray, p: SubjectParams, border_weight: np.ndarray | None = None) -> np.ndarray:
    """Radius (cm) of the neutral, eyes-closed face along directions `d [..., 3]`."""
    r0 = base_radius(d, p)
    x, y = r0 * d[..., 0], r0 * d[..., 1]
    weight = smoothstep(0.15, 0.5, d[..., 2])
    if border_weight is not None:
        weight = weight * border_weight
    r = r0 + weight * feature_offsets(x, y, p)
    for side in (-1.0, 1.0):
        hit = _lid_sphere_hit(d, eye_centre(side, p), EYE_LID_RADIUS * p.eye_scale)
        hit = np.where(np.isnan(hit), -1e3, hit)
        k = 0.12  # soft maximum: the lids blend into the socket without a crease
        r = np.where(hit > 0, k * np.logaddexp(r / k, hit / k), r)
    return r


def border_taper(theta: np.ndarray, phi: np.ndarray) -> np.ndarray:
    """1 inside the face domain, falling to 0 at its border so the face meets the head shell smoothly."""
    t0, t1 = THETA_RANGE
    p0, p1 = PHI_RANGE
    margin = np.radians(10.0)
    return (
        smoothstep(t0, t0 + margin, theta)
        * smoothstep(t1, t1 - margin, theta)
        * smoothstep(p0, p0 + margin, phi)
        * smoothstep(p1, p1 - margin, phi)
    )


def face_points(theta: np.ndarray, phi: np.ndarray, p: SubjectParams) -> np.ndarray:
    """Neutral (eyes closed) face points in cm for parameters (theta, phi); shape `[..., 3]`."""
    d = directions(theta, phi)
    r = surface_radius(d, p, border_taper(theta, phi))
    return r[..., None] * d


def front_phi(y_front: float, p: SubjectParams) -> float:
    """Elevation whose point on the central column (theta = 0) has height `y_front` (cm), by bisection."""
    lo, hi = PHI_RANGE
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if face_points(np.array(0.0), np.array(mid), p)[1] < y_front:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def find_parameters(targets_xy: np.ndarray, p: SubjectParams, samples: int = 500) -> np.ndarray:
    """(theta, phi) of the front-facing surface points whose (X, Y) are nearest to `targets_xy [N, 2]`."""
    theta = np.linspace(*THETA_RANGE, samples)
    phi = np.linspace(*PHI_RANGE, samples)
    tt, pp = np.meshgrid(theta, phi)
    pts = face_points(tt, pp, p).reshape(-1, 3)
    params = np.stack([tt.ravel(), pp.ravel()], axis=1)
    out = np.empty((len(targets_xy), 2))
    for n, (tx, ty) in enumerate(np.asarray(targets_xy, np.float64)):
        dist = (pts[:, 0] - tx) ** 2 + (pts[:, 1] - ty) ** 2 - 1e-3 * pts[:, 2]
        out[n] = params[np.argmin(dist)]
    return out
