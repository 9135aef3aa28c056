"""Data for the Blender-side tests, made in the engine venv; the checks run inside Blender (tests/blender_runner.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
for path in (HERE.parents[1], HERE.parent, HERE.parent / "addon"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import addon_synthetic as synthetic  # noqa: E402

from blender_addon.io import convert  # noqa: E402
from dlatrack_engine.wire.png import decode_png  # noqa: E402

SCRIPTS = HERE / "bpy_scripts"
FRAMES = 100


def make_synthetic_job(root: Path) -> dict[str, str]:
    """An avatar package + a finished 100-frame track job, and the expected Blender-side arrays."""
    topology = synthetic.grid_topology(12)
    package = synthetic.write_avatar_package(root / "avatar", topology)
    truth = synthetic.write_track_job(root / "job", topology, frames=FRAMES, size=(64, 64))
    # Expected values computed from the conventions directly (not through the add-on's conversion code).
    head_to_object = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], dtype=np.float64)
    cv_to_blender_world = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], dtype=np.float64)
    cv_world = np.einsum("nij,nvj->nvi", truth["head_R"], truth["vertices"]) + truth["head_t"][:, None]
    expected = root / "expected.npz"
    np.savez(
        expected,
        object_vertices=truth["vertices"] @ head_to_object.T,
        world_vertices=cv_world @ cv_to_blender_world.T,
        pixels=_project(cv_world, truth["K"]),
        neutral_object=topology["neutral"] @ head_to_object.T,
        corner_uvs=topology["uvs"][topology["uv_faces"].ravel()],
        grey=synthetic.GREY,
        colours_full=np.stack([synthetic.texture_colour(i, relit=False) for i in range(FRAMES)]),
        colours_relit=np.stack([synthetic.texture_colour(i, relit=True) for i in range(FRAMES)]),
    )
    assert np.allclose(convert.CV_WORLD_TO_BLENDER, cv_to_blender_world)
    return {"package": str(package), "job": str(root / "job"), "expected": str(expected), "work": str(root)}


def _project(points: np.ndarray, K: np.ndarray) -> np.ndarray:
    """OpenCV pinhole projection of camera-frame points [..., 3] -> pixel (u, v) [..., 2]."""
    uvw = points @ K.T
    return uvw[..., :2] / uvw[..., 2:]


def _near(image: np.ndarray, colour: np.ndarray, tolerance: int = 3) -> np.ndarray:
    return np.all(np.abs(image[..., :3].astype(int) - colour.astype(int)) <= tolerance, axis=-1) & (
        image[..., 3] == 255
    )


def assert_renders_follow_textures(paths: dict[str, str]) -> None:
    """Renders of the synthetic job (bpy_scripts/check_render.py, any engine) at 64², the issue's size:
    frames 1 and 2 differ exactly where their textures differ, and the switch shows the fully-lit texture."""
    relit_1, relit_2, full_1 = (decode_png(Path(paths[k]).read_bytes()) for k in ("relit_1", "relit_2", "full_1"))
    assert relit_1.shape == (64, 64, 4), relit_1.shape
    # Frames 1 and 2 share geometry (synthetic.frame_pose), so the silhouettes match exactly.
    np.testing.assert_array_equal(relit_1[..., 3] > 0, relit_2[..., 3] > 0)
    grey = _near(relit_1, synthetic.GREY)
    right = _near(relit_1, synthetic.texture_colour(0, relit=True))
    assert grey.sum() > 30 and right.sum() > 30, "the avatar must show both texture halves"
    # Where the texture is the same (left half, grey) the frames agree; where it differs they differ.
    assert _near(relit_2, synthetic.GREY)[grey].all()
    assert _near(relit_2, synthetic.texture_colour(1, relit=True))[right].all()
    # The switch shows the fully-lit texture of the same frame.
    assert _near(full_1, synthetic.texture_colour(0, relit=False))[right].all()
    assert _near(full_1, synthetic.GREY)[grey].all()
