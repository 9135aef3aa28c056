"""The sample subject's expression space: procedural region blend shapes plus a jaw rotation (numpy only).

Every expression is a smooth displacement field over a facial region, evaluated once on the neutral mesh
and combined linearly; the jaw is a rotation of the lower face about a hinge near the ears, applied after
the linear shapes. Weights are continuous in [0, 1] (mouth_shift in [-1, 1]); ground truth stores them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import face_shape as fs
from .face_model import FaceMesh

EXPRESSION_NAMES = (
    "jaw_open",
    "smile_L",
    "smile_R",
    "pucker",
    "funnel",
    "blink_L",
    "blink_R",
    "brow_raise_L",
    "brow_raise_R",
    "brow_frown_L",
    "brow_frown_R",
    "mouth_shift",
)
JAW_MAX_ANGLE = 0.38  # radians at jaw_open = 1 (about 22 degrees)
JAW_PIVOT = np.array([0.0, -1.5, -1.0])  # cm, near the temporomandibular joints


def _gauss(p: np.ndarray, cx: float, cy: float, sx: float, sy: float, px: int = 2) -> np.ndarray:
    return np.exp(-0.5 * (np.abs((p[:, 0] - cx) / sx) ** px + ((p[:, 1] - cy) / sy) ** 2))


@dataclass
class ExpressionModel:
    """Neutral mesh + linear bases + jaw hinge; `evaluate` gives head-frame vertices in metres."""

    neutral: np.ndarray  # [V, 3] cm
    bases: np.ndarray  # [E, V, 3] cm per unit weight (zeros for the jaw entry)
    jaw_weight: np.ndarray  # [V] how much of the jaw rotation each vertex follows

    @property
    def names(self) -> tuple[str, ...]:
        return EXPRESSION_NAMES

    def evaluate(self, weights: np.ndarray) -> np.ndarray:
        """Vertices [V, 3] in metres for expression weights [E]."""
        weights = np.asarray(weights, np.float64)
        if weights.shape != (len(EXPRESSION_NAMES),):
            raise ValueError(f"expression weights: shape {weights.shape}, expected ({len(EXPRESSION_NAMES)},)")
        v = self.neutral + np.tensordot(weights, self.bases, axes=1)
        angle = JAW_MAX_ANGLE * weights[0]
        c, s = np.cos(angle), np.sin(angle)
        q = v - JAW_PIVOT
        rotated = np.stack([q[:, 0], c * q[:, 1] - s * q[:, 2], s * q[:, 1] + c * q[:, 2]], axis=1) + JAW_PIVOT
        v = v + self.jaw_weight[:, None] * (rotated - v)
        return (v * 0.01).astype(np.float32)


def _jaw_weight(mesh: FaceMesh) -> np.ndarray:
    """1 on the lower lip and chin, 0 on the upper lip; the cheeks beside the mouth follow partly."""
    p = mesh.neutral
    mouth_y, mouth_half = mesh.params.mouth_y, fs.MOUTH_HALF_WIDTH * mesh.params.mouth_width
    lat = np.abs(p[:, 0])
    mouth_phi = mesh.row_phi[mesh.slit_row["mouth"]]
    below = (mesh.phi < mouth_phi - 1e-9) | (mesh.duplicate & (np.abs(mesh.phi - mouth_phi) < 1e-9))
    # Beside the mouth the hinge line rises towards the cheeks (like the nasolabial fold).
    q = (p[:, 1] - mouth_y) - 0.8 * np.clip(lat - mouth_half, 0.0, None)
    beside = 1.0 - fs.smoothstep(-1.0, 1.0, q)
    inside_mouth = lat < mouth_half
    weight = np.where(inside_mouth, below.astype(np.float64), np.where(below, np.maximum(beside, 0.7), beside))
    side_falloff = fs.smoothstep(7.0, 5.0, lat) * fs.smoothstep(-2.0, 0.5, p[:, 2])
    return weight * side_falloff


def build_expression_model(mesh: FaceMesh) -> ExpressionModel:
    """Evaluate every region shape on the neutral mesh (deterministic, no randomness); the regions sit on
    this subject's mouth and brows."""
    p = mesh.neutral
    n_vert = len(p)
    bases = np.zeros((len(EXPRESSION_NAMES), n_vert, 3))
    my, mw, spread, dy = mesh.params.mouth_y, mesh.params.mouth_width, mesh.params.eye_spread, mesh.params.eye_dy
    lips = _gauss(p, 0.0, my, 2.6 * mw, 1.3, px=4)
    for k, side in ((1, 1.0), (2, -1.0)):  # smile: corners up, out and back; the cheek rises
        corner = _gauss(p, side * 2.5 * mw, my + 0.3, 1.4, 1.2)
        cheek = _gauss(p, side * 3.6, -3.0, 1.6, 1.5)
        bases[k, :, 0] = side * 0.45 * corner
        bases[k, :, 1] = 0.55 * corner + 0.3 * cheek
        bases[k, :, 2] = -0.3 * corner + 0.12 * cheek
    bases[3, :, 0] = -0.35 * p[:, 0] * lips  # pucker: lips gather to the middle and push forward
    bases[3, :, 2] = 0.6 * lips
    upper = ~mesh.duplicate & (mesh.phi >= mesh.row_phi[mesh.slit_row["mouth"]] - 1e-9)
    centre = _gauss(p, 0.0, my, 1.6 * mw, 1.0, px=4)
    bases[4, :, 0] = -0.2 * p[:, 0] * lips  # funnel: lips forward and apart in the middle
    bases[4, :, 1] = np.where(upper, 0.3, -0.35) * centre
    bases[4, :, 2] = 0.45 * lips
    for k, side in ((5, 1.0), (6, -1.0)):  # blink: exactly back to the closed lids on that side
        on_side = (p[:, 0] * side) > 0
        bases[k] = np.where(on_side[:, None], mesh.closed - mesh.neutral, 0.0)
    for k, side in ((7, 1.0), (8, -1.0)):  # brow raise: brow and forehead up
        region = _gauss(p, side * 3.1 * spread, 3.4 + dy, 2.3, 1.6)
        bases[k, :, 1] = 0.6 * region
        bases[k, :, 2] = 0.05 * region
    for k, side in ((9, 1.0), (10, -1.0)):  # frown: inner brow down and towards the middle
        region = _gauss(p, side * 1.6 * spread, 2.8 + dy, 1.1, 0.9)
        bases[k, :, 0] = -side * 0.3 * region
        bases[k, :, 1] = -0.35 * region
        bases[k, :, 2] = 0.1 * region
    bases[11, :, 0] = 0.6 * _gauss(p, 0.0, my, 2.8 * mw, 1.5)  # mouth shift to the subject's left (+) / right (-)
    return ExpressionModel(neutral=p.copy(), bases=bases, jaw_weight=_jaw_weight(mesh))
