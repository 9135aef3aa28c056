"""The add-on's numpy conversions agree with the engine's (render.camera) and with first principles."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from blender_addon.io import convert
from dlatrack_engine.render import camera as engine_camera
from dlatrack_engine.server.decode import view_vectors_from_camera

RNG = np.random.default_rng(7)


def random_pose() -> tuple[np.ndarray, np.ndarray]:
    return Rotation.random(random_state=RNG.integers(1 << 30)).as_matrix(), RNG.normal(size=3)


def test_head_vertices_match_engine() -> None:
    points = RNG.normal(size=(5, 7, 3))
    np.testing.assert_allclose(
        convert.head_vertices_to_object(points), engine_camera.head_to_blender_points(points), atol=1e-6
    )


def test_object_matrix_matches_engine_and_maps_vertices_to_blender_world() -> None:
    R, t = random_pose()
    ours = convert.head_pose_to_object_matrix(R, t)
    theirs = engine_camera.head_pose_to_blender_matrix(R, t, world_to_blender=convert.CV_WORLD_TO_BLENDER)
    np.testing.assert_allclose(ours, theirs, atol=1e-12)
    # First principles: object matrix @ object-frame vertex == Blender-world image of the OpenCV-world point.
    x_head = RNG.normal(size=(10, 3))
    x_object = convert.head_vertices_to_object(x_head).astype(np.float64)
    world = x_object @ ours[:3, :3].T + ours[:3, 3]
    expected = (x_head @ R.T + t) @ convert.CV_WORLD_TO_BLENDER.T
    np.testing.assert_allclose(world, expected, atol=1e-6)
    assert np.isclose(np.linalg.det(ours[:3, :3]), 1.0)


def test_batched_object_matrices() -> None:
    poses = [random_pose() for _ in range(4)]
    batch = convert.head_pose_to_object_matrix(np.stack([p[0] for p in poses]), np.stack([p[1] for p in poses]))
    for matrix, (R, t) in zip(batch, poses, strict=True):
        np.testing.assert_allclose(matrix, convert.head_pose_to_object_matrix(R, t))
    with pytest.raises(ValueError, match="head_t"):
        convert.head_pose_to_object_matrix(np.eye(3)[None].repeat(2, 0), np.zeros((3, 3)))


def test_video_camera_matches_engine_and_blender_conventions() -> None:
    matrix = convert.opencv_extrinsics_to_camera_matrix()
    np.testing.assert_allclose(
        matrix, engine_camera.opencv_to_blender_camera(np.eye(3), np.zeros(3), convert.CV_WORLD_TO_BLENDER), atol=1e-12
    )
    # The video camera looks along Blender +Y (its local -Z) with +Z up.
    np.testing.assert_allclose(matrix[:3, :3] @ [0, 0, -1], [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(matrix[:3, :3] @ [0, 1, 0], [0, 0, 1], atol=1e-12)
    R, t = random_pose()
    moved = convert.opencv_extrinsics_to_camera_matrix(R, t)
    back_R, back_t = engine_camera.blender_to_opencv_camera(moved, convert.CV_WORLD_TO_BLENDER)
    np.testing.assert_allclose(back_R, R, atol=1e-12)
    np.testing.assert_allclose(back_t, t, atol=1e-12)


@pytest.mark.parametrize("size", [(640, 480), (1280, 720)])
def test_landscape_intrinsics_match_engine(size: tuple[int, int]) -> None:
    width, height = size
    K = np.array([[900.0, 0, width / 2 + 13.5], [0, 900.0, height / 2 - 7.25], [0, 0, 1]])
    ours = convert.intrinsics_to_blender_camera(K, width, height)
    theirs = engine_camera.intrinsics_to_blender(K, width, height)
    for key in ("lens", "sensor_width", "sensor_fit", "shift_x", "shift_y"):
        assert ours[key] == pytest.approx(theirs[key]), key
    back = engine_camera.blender_to_intrinsics(
        ours["lens"], ours["sensor_width"], ours["shift_x"], ours["shift_y"], width, height
    )
    np.testing.assert_allclose(back, K, atol=1e-9)


def test_portrait_intrinsics_fit_the_long_side() -> None:
    K = np.array([[1000.0, 0, 360.0], [0, 1000.0, 640.0], [0, 0, 1]])
    settings = convert.intrinsics_to_blender_camera(K, 720, 1280)
    assert settings["sensor_fit"] == "VERTICAL"
    assert settings["lens"] == pytest.approx(1000.0 * 36.0 / 1280)
    assert settings["shift_x"] == pytest.approx(0.0) and settings["shift_y"] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="focal"):
        convert.intrinsics_to_blender_camera(np.diag([-1.0, 1.0, 1.0]), 10, 10)


def test_quaternions_match_scipy_and_keep_the_short_arc() -> None:
    rotations = Rotation.random(50, random_state=3)
    quats = convert.matrix_to_quaternions(rotations.as_matrix())
    expected = rotations.as_quat()[:, [3, 0, 1, 2]]  # scipy is (x, y, z, w)
    same_sign = np.sign(np.sum(quats * expected, axis=1))
    np.testing.assert_allclose(quats, expected * same_sign[:, None], atol=1e-9)
    assert np.all(np.sum(quats[1:] * quats[:-1], axis=1) >= 0)


def test_view_vectors_match_engine_decode() -> None:
    poses = [random_pose() for _ in range(6)]
    head_R = np.stack([p[0] for p in poses])
    head_t = np.stack([p[1] for p in poses])
    cam_R, cam_t = random_pose()
    centre = -cam_R.T @ cam_t
    np.testing.assert_allclose(
        convert.view_vector_in_head(head_R, head_t, centre),
        view_vectors_from_camera(cam_R, cam_t, head_R, head_t),
        atol=1e-6,
    )
