"""render.camera's contracts beyond round trips: explicit axis flips, batched inputs, default depth range,
the shapes OpenCV hands out, the exact limits of the Blender intrinsics check, and errors that name the field."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlatrack_engine.geometry import axis_angle_to_matrix
from dlatrack_engine.render.camera import (
    HEAD_TO_BLENDER,
    Camera,
    blender_to_head_points,
    blender_to_opencv_camera,
    clip_from_camera,
    clip_from_world,
    head_pose_to_blender_matrix,
    head_to_blender_points,
    intrinsics_to_blender,
    look_at,
    ndc_depth_to_camera_z,
    opencv_to_blender_camera,
    opencv_to_opengl_camera,
)

D = torch.float64
K = torch.tensor([[50.0, 0.0, 16.0], [0.0, 50.0, 12.0], [0.0, 0.0, 1.0]], dtype=D)


def test_camera_rejects_bad_shapes_and_sizes_naming_the_field() -> None:
    eye, zero = torch.eye(3), torch.zeros(3)
    with pytest.raises(ValueError, match=r"^Camera\.R: expected \[B, 3, 3\], got \(1, 3, 4\)$"):
        Camera(eye, torch.zeros(3, 4), zero, 4, 4)
    with pytest.raises(ValueError, match=r"^Camera\.t: expected \[B, 3\], got \(1, 2\)$"):
        Camera(eye, eye, torch.zeros(2), 4, 4)
    with pytest.raises(ValueError, match=r"^Camera\.K: expected \[B, 3, 3\], got \(1, 2, 3\)$"):
        Camera(torch.zeros(2, 3), eye, zero, 4, 4)
    for width, height in ((0, 4), (4, 0), (-2, 3)):
        with pytest.raises(ValueError, match=rf"^Camera: width and height must be positive, got {width}x{height}$"):
            Camera(eye, eye, zero, width, height)
    assert Camera(eye, eye, zero, 1, 1).batch_size == 1


def test_camera_to_moves_every_tensor() -> None:
    cam = Camera(K.float(), torch.eye(3), torch.tensor([0.0, 0.0, 2.0]), 32, 24)
    double = cam.to(dtype=D)
    assert (double.K.dtype, double.R.dtype, double.t.dtype) == (D, D, D)
    meta = cam.to("meta")  # a device other than the CPU, available everywhere
    assert {meta.K.device.type, meta.R.device.type, meta.t.device.type} == {"meta"}
    assert (meta.K.dtype, meta.width, meta.height) == (torch.float32, 32, 24)


def test_default_depth_range_is_one_centimetre_to_ten_metres() -> None:
    points = torch.tensor([[[0.0, 0.0, 0.01], [0.1, -0.2, 10.0], [0.3, 0.1, 1.0]]], dtype=D)
    clip = clip_from_camera(points, K, 32, 24)  # a 2-D K is one camera for the batch
    ndc_z = clip[..., 2] / clip[..., 3]
    torch.testing.assert_close(ndc_z[0, :2], torch.tensor([-1.0, 1.0], dtype=D))
    torch.testing.assert_close(ndc_depth_to_camera_z(ndc_z), points[..., 2])
    cam = Camera(K, torch.eye(3, dtype=D), torch.zeros(3, dtype=D), 32, 24)
    torch.testing.assert_close(clip_from_world(points, cam), clip)


def test_look_at_is_batched_row_by_row() -> None:
    eyes = torch.tensor([[0.0, 0.0, 3.0], [1.0, 2.0, -2.0], [-0.5, 0.2, 0.7]], dtype=D)
    target, up = torch.tensor([0.1, -0.1, 0.0], dtype=D), torch.tensor([0.0, 1.0, 0.0], dtype=D)
    R, t = look_at(eyes, target, up)
    assert R.shape == (3, 3, 3) and t.shape == (3, 3)
    for b in range(3):
        R_b, t_b = look_at(eyes[b], target, up)
        torch.testing.assert_close(R[b], R_b)
        torch.testing.assert_close(t[b], t_b)
        torch.testing.assert_close(R_b @ R_b.T, torch.eye(3, dtype=D))
        forward = (target - eyes[b]) / (target - eyes[b]).norm()
        torch.testing.assert_close(R_b[2], forward)  # the optical axis, unit length
        assert float(R_b[1] @ up) < 0  # image y points down, away from `up`
    with pytest.raises(ValueError, match=r"^look_at: `up` is parallel to the viewing direction; pick another up "
                                         r"vector$"):
        look_at(eyes, eyes + up, up)


def test_opengl_flips_y_and_z_rows() -> None:
    R = axis_angle_to_matrix(torch.tensor([0.3, -0.2, 0.1], dtype=D))
    t = torch.tensor([0.1, -0.2, 0.7], dtype=D)
    R_gl, t_gl = opencv_to_opengl_camera(R, t)
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=D)
    torch.testing.assert_close(R_gl, flip[:, None] * R, atol=0, rtol=0)
    torch.testing.assert_close(t_gl, flip * t, atol=0, rtol=0)


def test_blender_point_maps_keep_the_array_type_and_batch() -> None:
    pts = torch.tensor([[1.0, 2.0, 3.0], [-4.0, 5.0, -6.0]], dtype=D)
    blender = head_to_blender_points(pts)
    assert isinstance(blender, torch.Tensor)
    torch.testing.assert_close(blender, torch.tensor([[1.0, -3.0, 2.0], [-4.0, 6.0, 5.0]], dtype=D))
    back = blender_to_head_points(blender)
    assert isinstance(back, torch.Tensor)
    torch.testing.assert_close(back, pts)
    np.testing.assert_array_equal(blender_to_head_points(blender.numpy()), pts.numpy())
    grid = torch.stack([pts, 2 * pts])  # [..., 3] with two leading dimensions
    torch.testing.assert_close(head_to_blender_points(grid), torch.stack([blender, 2 * blender]))
    torch.testing.assert_close(blender_to_head_points(head_to_blender_points(grid)), grid)


def test_head_pose_matrix_in_a_y_up_world_with_an_opencv_column_translation() -> None:
    R = axis_angle_to_matrix(torch.tensor([0.2, 0.4, -0.1], dtype=D)).numpy()
    t = np.array([[0.1], [0.0], [0.5]])  # cv2.solvePnP's tvec shape
    M = head_pose_to_blender_matrix(R, t, HEAD_TO_BLENDER)
    assert M.shape == (4, 4)
    np.testing.assert_allclose(M[:3, :3], HEAD_TO_BLENDER @ R @ HEAD_TO_BLENDER.T, atol=1e-15)
    np.testing.assert_allclose(M[:3, 3], HEAD_TO_BLENDER @ t[:, 0], atol=1e-15)
    np.testing.assert_array_equal(M[3], [0.0, 0.0, 0.0, 1.0])
    cam = opencv_to_blender_camera(R, t)
    np.testing.assert_allclose(cam[:3, 3], -R.T @ t[:, 0], atol=1e-15)
    with pytest.raises(ValueError, match=r"^blender_to_opencv_camera: matrix_world must be 4x4, got \(3, 4\)$"):
        blender_to_opencv_camera(np.eye(4)[:3])


def test_blender_intrinsics_limits_are_inclusive() -> None:
    def K_of(fy: float, skew: float) -> np.ndarray:
        return np.array([[1000.0, skew, 330.0], [0.0, fy, 228.0], [0.0, 0.0, 1.0]])

    assert intrinsics_to_blender(K_of(1001.0, 0.001), 640, 480) == {
        "lens": 1000.0 * 36.0 / 640, "sensor_width": 36.0, "sensor_fit": "HORIZONTAL",
        "shift_x": (320.0 - 330.0) / 640, "shift_y": (228.0 - 240.0) / 640}
    for fy, skew in ((1001.01, 0.0), (1000.0, 0.00101)):
        with pytest.raises(ValueError, match="fx == fy and zero skew"):
            intrinsics_to_blender(K_of(fy, skew), 640, 480)
