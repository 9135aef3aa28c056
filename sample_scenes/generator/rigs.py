"""Cameras, the light dome and performances of the virtual capture, as plain arrays (numpy only).

The "scene frame" used here is the light-stage world of conventions.md: metres, +Y up, the subject's head
at the origin looking along +Z at rest. Cameras are OpenCV (x_cam = R x_world + t, x right, y down).
Everything is deterministic from a seed so a rerun reproduces the data bit for bit (up to Cycles noise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .expressions import EXPRESSION_NAMES

FACE_CENTRE = np.array([0.0, -0.01, 0.05])  # where cameras aim (metres, head frame at rest)


@dataclass
class Camera:
    name: str
    K: np.ndarray  # [3, 3]
    R: np.ndarray  # [3, 3] world -> camera
    t: np.ndarray  # [3]
    width: int
    height: int

    @property
    def centre(self) -> np.ndarray:
        return -self.R.T @ self.t


def rotation_matrix(rotvec: np.ndarray) -> np.ndarray:
    """Rodrigues: axis-angle (radians) to a 3x3 rotation."""
    rotvec = np.asarray(rotvec, np.float64)
    angle = np.linalg.norm(rotvec)
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * kx + (1 - np.cos(angle)) * kx @ kx


def euler_yxz(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Head rotation: yaw about +Y (turn to the subject's left for yaw > 0), pitch about +X (nod down for
    pitch > 0), roll about +Z."""
    return rotation_matrix([0, yaw, 0]) @ rotation_matrix([pitch, 0, 0]) @ rotation_matrix([0, 0, roll])


def look_at(centre: np.ndarray, target: np.ndarray, up: np.ndarray | None = None):
    """OpenCV extrinsics (R, t) of a camera at `centre` looking at `target`, image up along `up` (+Y)."""
    up = np.array([0.0, 1.0, 0.0]) if up is None else up
    z = target - centre
    z = z / np.linalg.norm(z)
    x = np.cross(z, up)
    x = x / np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])
    return rot, -rot @ centre


def intrinsics(focal_px: float, width: int, height: int) -> np.ndarray:
    return np.array([[focal_px, 0, width / 2], [0, focal_px, height / 2], [0, 0, 1.0]])


def stage_cameras(count: int, width: int, height: int, distance: float = 1.0) -> list[Camera]:
    """`count` cameras on a sphere in front of the face: azimuth -50..50 deg, two rings in elevation."""
    focal = 0.5 * width / np.tan(np.radians(7.5))  # a 15 degree field of view frames the head at 1 m
    rings = 1 if count < 4 else 2
    per_ring = int(np.ceil(count / rings))
    cameras = []
    for n in range(count):
        ring, k = divmod(n, per_ring)
        in_ring = min(per_ring, count - ring * per_ring)
        azimuth = np.radians(0.0 if in_ring == 1 else -50.0 + 100.0 * k / (in_ring - 1))
        elevation = np.radians([8.0, -12.0][ring] if rings == 2 else 5.0)
        centre = FACE_CENTRE + distance * np.array(
            [np.sin(azimuth) * np.cos(elevation), np.sin(elevation), np.cos(azimuth) * np.cos(elevation)]
        )
        rot, t = look_at(centre, FACE_CENTRE)
        cameras.append(Camera(f"cam{n:02d}", intrinsics(focal, width, height), rot, t, width, height))
    return cameras


def light_dome(num_groups: int = 50, lights_per_group: int = 3, radius: float = 1.4, seed: int = 0):
    """Point-light positions `[G, L, 3]`: group centres spread over the front dome (Fibonacci lattice),
    each group a small cluster of LEDs, like the paper's patterns of up to 10 LEDs."""
    rng = np.random.default_rng(seed + 101)
    candidates = []
    golden = np.pi * (3.0 - np.sqrt(5.0))
    total = num_groups * 4
    for n in range(total):
        y = 1.0 - 2.0 * (n + 0.5) / total
        ring = np.sqrt(1.0 - y * y)
        d = np.array([np.cos(golden * n) * ring, y, np.sin(golden * n) * ring])
        if d[2] > -0.25 and d[1] > -0.55:  # front and sides of the head, not far below the chin
            candidates.append(d)
    candidates = np.array(candidates)
    order = np.argsort(-candidates[:, 2])  # keep the most frontal ones
    centres = candidates[np.sort(order[:num_groups])]
    out = np.empty((num_groups, lights_per_group, 3))
    for g, d in enumerate(centres):
        tangent = np.cross(d, [0.0, 1.0, 0.0] if abs(d[1]) < 0.9 else [1.0, 0.0, 0.0])
        tangent /= np.linalg.norm(tangent)
        bitangent = np.cross(d, tangent)
        for k in range(lights_per_group):
            a = 2 * np.pi * k / lights_per_group + rng.uniform(0, 0.5)
            out[g, k] = radius * d + 0.08 * (np.cos(a) * tangent + np.sin(a) * bitangent)
    return out


@dataclass
class Performance:
    """Per-frame expression weights and rigid head motion (head frame -> scene frame)."""

    expression: np.ndarray  # [N, E]
    head_R: np.ndarray  # [N, 3, 3]
    head_t: np.ndarray  # [N, 3]


def _smooth_track(n: int, keys: np.ndarray, spacing: int) -> np.ndarray:
    """Cosine-interpolate key values `[K, D]` placed every `spacing` frames to `[n, D]`."""
    t = np.arange(n) / spacing
    i = np.minimum(np.floor(t).astype(int), len(keys) - 2)
    f = t - i
    f = 0.5 - 0.5 * np.cos(np.pi * np.clip(f, 0, 1))
    return keys[i] * (1 - f)[:, None] + keys[i + 1] * f[:, None]


def random_expressions(n: int, rng: np.random.Generator, spacing: int = 6, intensity: float = 1.0) -> np.ndarray:
    """Smoothly varying expression weights: a few expressions active at a time, blinks now and then."""
    keys = np.zeros((n // spacing + 3, len(EXPRESSION_NAMES)))
    for k in range(len(keys)):
        active = rng.choice(len(EXPRESSION_NAMES), size=rng.integers(1, 4), replace=False)
        keys[k, active] = rng.uniform(0.2, 1.0, len(active)) * intensity
    keys[:, EXPRESSION_NAMES.index("mouth_shift")] *= rng.choice([-1.0, 1.0], len(keys))
    keys[0] = 0.0  # every performance starts from the neutral face
    weights = _smooth_track(n, keys, spacing)
    blink = rng.uniform(size=n) < 0.08  # quick blinks on top of the slow expressions
    for name in ("blink_L", "blink_R"):
        col = EXPRESSION_NAMES.index(name)
        weights[blink, col] = np.maximum(weights[blink, col], 0.95)
    return weights


def performance(
    n: int,
    seed: int,
    yaw_max: float = np.radians(30.0),
    pitch_max: float = np.radians(12.0),
    roll_max: float = np.radians(6.0),
    sweep: bool = False,
) -> Performance:
    """A deterministic performance; `sweep` makes the yaw visit both extremes (used by the wild clips)."""
    rng = np.random.default_rng(seed)
    expression = random_expressions(n, rng)
    spacing = 8
    keys = rng.uniform(-1, 1, (n // spacing + 3, 6)) * [yaw_max, pitch_max, roll_max, 0.02, 0.015, 0.02]
    keys[0] = 0.0
    motion = _smooth_track(n, keys, spacing)
    if sweep:
        phase = np.arange(n) / max(n - 1, 1)
        motion[:, 0] = yaw_max * np.sin(2 * np.pi * phase) * 0.95 + 0.05 * motion[:, 0]
    head_R = np.stack([euler_yxz(*m[:3]) for m in motion])
    return Performance(expression=expression, head_R=head_R, head_t=motion[:, 3:].copy())


def pattern_schedule(
    steps: int, per_step: int, sizes: tuple[int, int], seed: int, num_groups: int = 50
) -> list[list[list[int]]]:
    """Groups lit in each pattern frame of every step, `[step][k] -> sorted groups`.

    Groups are dealt from shuffled decks of all groups, so every group is lit as often as any other (to within
    one deck); a group already in the pattern is skipped and dealt later. Seeded and computed from step 0,
    so a capture extended with `--first-step` continues the same schedule.
    """
    low, high = sizes
    if not 1 <= low <= high <= num_groups:
        raise ValueError(f"--groups-per-pattern {low} {high}: need 1 <= MIN <= MAX <= {num_groups}")
    rng = np.random.default_rng(seed + 7919)
    deck: list[int] = []
    schedule = []
    for _ in range(steps):
        patterns = []
        for _ in range(per_step):
            size = int(rng.integers(low, high + 1))
            if len(deck) < 2 * size:
                deck += rng.permutation(num_groups).tolist()
            pattern: list[int] = []
            while len(pattern) < size:
                index = next(i for i, g in enumerate(deck) if g not in pattern)
                pattern.append(deck.pop(index))
            patterns.append(sorted(pattern))
        schedule.append(patterns)
    return schedule
