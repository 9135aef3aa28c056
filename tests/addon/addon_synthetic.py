"""Small but real test data for the add-on: an avatar package topology and a track job folder.

The job folder is written with the engine's own `JobFolder` writer (the same code the tracking pipeline
uses), in the conventions.md layout; poses, vertices and textures are analytic, so tests know exactly
what Blender must show on every frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dlatrack_engine.wire.jobfolder import JobFolder


def grid_topology(n: int = 10, width: float = 0.16) -> dict[str, np.ndarray]:
    """A face-sized curved sheet in the head frame (bulging towards +Z), n x n vertices, UVs = grid."""
    u, v = np.meshgrid(np.linspace(0.0, 1.0, n), np.linspace(0.0, 1.0, n))
    x = (u - 0.5) * width
    y = (v - 0.5) * width * 1.2
    z = 0.05 * np.cos((u - 0.5) * np.pi) * np.cos((v - 0.5) * np.pi)
    neutral = np.stack([x, y, z], -1).reshape(-1, 3).astype(np.float32)
    faces = []
    for row in range(n - 1):
        for col in range(n - 1):
            a, b, c, d = row * n + col, row * n + col + 1, (row + 1) * n + col + 1, (row + 1) * n + col
            faces += [[a, b, c], [a, c, d]]
    faces = np.asarray(faces, dtype=np.int32)
    uvs = np.stack([u, v], -1).reshape(-1, 2).astype(np.float32)
    return {"faces": faces, "uv_faces": faces.copy(), "uvs": uvs, "neutral": neutral}


def write_avatar_package(root: Path, topology: dict[str, np.ndarray], name: str = "synthetic") -> Path:
    """The two files of an avatar package the add-on reads (the engine also needs weights.safetensors)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "avatar.json").write_text(json.dumps({"format": "dlatrack-avatar", "name": name, "texture_size": 16}))
    landmarks = {"landmark_faces": np.zeros(68, np.int32), "landmark_barycentrics": np.full((68, 3), 1 / 3, np.float32)}
    np.savez(root / "topology.npz", **topology, **landmarks)
    return root


def rotation(axis_angle: np.ndarray) -> np.ndarray:
    """Rodrigues: axis-angle [3] -> rotation [3, 3]."""
    angle = float(np.linalg.norm(axis_angle))
    if angle < 1e-12:
        return np.eye(3)
    k = np.asarray(axis_angle) / angle
    cross = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * cross @ cross


FACING_CAMERA = np.diag([1.0, -1.0, -1.0])  # head +Z (out of the face) towards an OpenCV camera


def frame_pose(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(head_R, head_t, r) of frame i; frames 0 and 1 share pose and shape (render test)."""
    phase = max(i - 1, 0)
    r = np.array([0.15 * np.sin(0.2 * phase), 0.3 * np.sin(0.13 * phase), 0.1 * np.cos(0.17 * phase) - 0.1])
    head_R = FACING_CAMERA @ rotation(r)
    head_t = np.array([0.01 * np.sin(0.1 * phase), -0.01 * np.cos(0.1 * phase), 0.6 + 0.02 * np.sin(0.05 * phase)])
    return head_R, head_t, r


def frame_vertices(neutral: np.ndarray, i: int) -> np.ndarray:
    phase = max(i - 1, 0)
    bump = 0.01 * np.sin(0.3 * phase + 20.0 * neutral[:, :1]) * np.array([[0.2, 1.0, 0.5]])
    return (neutral + bump).astype(np.float32)


GREY = np.array([128, 128, 128], np.uint8)


def texture_colour(i: int, relit: bool) -> np.ndarray:
    """The colour of the right half (u > 0.5) of frame i's texture; the left half is always GREY."""
    base = np.array([(37 * i) % 200 + 40, (91 * i + 60) % 200 + 40, (53 * i + 120) % 200 + 40], np.int64)
    return (base // 2 if relit else base).astype(np.uint8)


def texture(i: int, relit: bool, size: int = 16) -> np.ndarray:
    image = np.empty((size, size, 3), np.uint8)
    image[:, : size // 2] = GREY
    image[:, size // 2 :] = texture_colour(i, relit)
    return image


def write_track_job(
    root: Path,
    topology: dict[str, np.ndarray],
    frames: int = 100,
    size: tuple[int, int] = (48, 64),
    textures: bool = True,
    video: str | None = None,
    latent: int = 4,
) -> dict[str, np.ndarray]:
    """A finished track job of `frames` frames; returns the ground truth (head-frame vertices, poses, K)."""
    width, height = size
    K = np.array([[70.0, 0.0, width / 2 + 3.0], [0.0, 70.0, height / 2 - 2.0], [0.0, 0.0, 1.0]])
    folder = JobFolder.create(root, "synthjob", "track", frames=list(range(frames)), fps=24.0, size=[width, height],
                              K=K, video=video, state="completed")  # fmt: skip
    truth: dict[str, list[np.ndarray]] = {"vertices": [], "head_R": [], "head_t": []}
    for i in range(frames):
        head_R, head_t, r = frame_pose(i)
        vertices = frame_vertices(topology["neutral"], i)
        folder.write_frame(i, {"vertices": vertices, "head_R": head_R, "head_t": head_t, "r": r,
                               "z": np.linspace(-0.5, 0.5, latent, dtype=np.float32)})  # fmt: skip
        if textures:
            folder.write_texture("full", i, texture(i, relit=False))
            folder.write_texture("relit", i, texture(i, relit=True))
        truth["vertices"].append(vertices)
        truth["head_R"].append(head_R)
        truth["head_t"].append(head_t)
    out = {key: np.stack(value) for key, value in truth.items()}
    out["K"] = K
    return out


def tiny_avatar_package(root: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A real avatar package (random, untrained DAM + G; 16x16 textures) on the synthetic sheet's topology."""
    import torch

    from dlatrack_engine.avatar.format import Topology
    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.models.dam import DAM, DAMConfig
    from dlatrack_engine.models.lighting import LightingConfig, LightingModel

    torch.manual_seed(0)
    arrays = grid_topology(6)
    rng = np.random.default_rng(0)
    bary = rng.random((68, 3)).astype(np.float32)
    topology = Topology(**arrays, landmark_faces=rng.integers(0, len(arrays["faces"]), 68).astype(np.int32),
                        landmark_barycentrics=bary / bary.sum(1, keepdims=True))  # fmt: skip
    dam = DAM(DAMConfig(num_vertices=topology.num_vertices, texture_size=16, latent_size=4, base_grid=8,
                        max_channels=16, min_channels=8, mesh_hidden=16))  # fmt: skip
    small_g = {"light_channels": (8,) * 5, "texture_channels": (8,) * 4, "branch_channels": 8, "mlp_width": 16}
    lighting = LightingModel(LightingConfig(texture_size=16, input_texture_size=16, energy_normalised=False, **small_g))
    avatar = Avatar(dam, lighting, topology, {"name": "tiny"})
    return avatar.to_package(root / "tiny", provenance={"command": "tests/blender"}), arrays
