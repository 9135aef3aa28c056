"""Camera conventions: Π vs clip space, look-at, OpenCV <-> OpenGL <-> Blender (render.camera)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlatrack_engine.geometry import axis_angle_to_matrix
from dlatrack_engine.render.camera import (
    HEAD_TO_BLENDER,
    Camera,
    blender_to_head_points,
    blender_to_intrinsics,
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
    project,
)


def _camera(dtype: torch.dtype = torch.float64) -> Camera:
    K = torch.tensor([[500.0, 0.3, 310.0], [0.0, 480.0, 250.0], [0.0, 0.0, 1.0]], dtype=dtype)
    R = axis_angle_to_matrix(torch.tensor([0.1, -0.2, 0.05], dtype=dtype))
    t = torch.tensor([0.02, -0.01, 0.6], dtype=dtype)
    return Camera(K, R, t, 640, 480)


def test_project_agrees_with_clip_space() -> None:
    cam = _camera()
    pts = torch.randn(1, 50, 3, dtype=torch.float64) * 0.1
    uv, depth = project(pts, cam)
    clip = clip_from_world(pts, cam, near=0.1, far=5.0)
    ndc = clip[..., :3] / clip[..., 3:]
    torch.testing.assert_close((ndc[..., 0] + 1) * cam.width / 2, uv[..., 0])
    torch.testing.assert_close((ndc[..., 1] + 1) * cam.height / 2, uv[..., 1])
    torch.testing.assert_close(clip[..., 3], depth)
    torch.testing.assert_close(ndc_depth_to_camera_z(ndc[..., 2], 0.1, 5.0), depth)


def test_near_far_map_to_minus_one_and_one() -> None:
    K = torch.eye(3, dtype=torch.float64)[None]
    pts = torch.tensor([[[0.0, 0.0, 0.1], [0.0, 0.0, 5.0]]], dtype=torch.float64)
    clip = clip_from_camera(pts, K, 2, 2, near=0.1, far=5.0)
    torch.testing.assert_close(clip[0, :, 2] / clip[0, :, 3], torch.tensor([-1.0, 1.0], dtype=torch.float64))


def test_pixel_centre_convention() -> None:
    # A point on the optical axis of a camera with cx = W/2 lands on the corner between the middle pixels.
    K = torch.tensor([[100.0, 0.0, 2.0], [0.0, 100.0, 2.0], [0.0, 0.0, 1.0]])
    cam = Camera(K, torch.eye(3), torch.zeros(3), 4, 4)
    uv, _ = project(torch.tensor([[[0.0, 0.0, 1.0]]]), cam)
    torch.testing.assert_close(uv, torch.tensor([[[2.0, 2.0]]]))


def test_camera_center_and_look_at() -> None:
    eye = torch.tensor([0.3, 0.2, 2.0], dtype=torch.float64)
    target = torch.tensor([0.0, 0.1, 0.0], dtype=torch.float64)
    up = torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64)
    R, t = look_at(eye, target, up)
    torch.testing.assert_close(R @ R.T, torch.eye(3, dtype=torch.float64))
    assert float(torch.linalg.det(R)) == pytest.approx(1.0)
    cam = Camera(torch.eye(3, dtype=torch.float64), R, t, 10, 10)
    torch.testing.assert_close(cam.center()[0], eye)
    x_cam = cam.world_to_camera(torch.stack([target, target + up])[None])[0]
    assert abs(float(x_cam[0, 0])) < 1e-12 and abs(float(x_cam[0, 1])) < 1e-12 and x_cam[0, 2] > 0
    assert x_cam[1, 1] < x_cam[0, 1]  # world up appears upwards in the image (smaller v)
    with pytest.raises(ValueError, match="parallel"):
        look_at(eye, eye + up, up)


def test_opencv_blender_camera_round_trip() -> None:
    cam = _camera()
    for W in (None, HEAD_TO_BLENDER):
        M = opencv_to_blender_camera(cam.R[0], cam.t[0], W)
        R, t = blender_to_opencv_camera(M, W)
        np.testing.assert_allclose(R, cam.R[0].numpy(), atol=1e-12)
        np.testing.assert_allclose(t, cam.t[0].numpy(), atol=1e-12)
    # A Blender camera looks along its local -Z: the OpenCV optical axis (+Z) maps to -Z of matrix_world.
    M = opencv_to_blender_camera(cam.R[0], cam.t[0])
    np.testing.assert_allclose(-M[:3, 2], cam.R[0].numpy()[2], atol=1e-12)
    np.testing.assert_allclose(M[:3, 3], cam.center()[0].numpy(), atol=1e-12)
    R_gl, t_gl = opencv_to_opengl_camera(cam.R, cam.t)
    R_cv, t_cv = opencv_to_opengl_camera(R_gl, t_gl)
    torch.testing.assert_close(R_cv, cam.R)
    torch.testing.assert_close(t_cv, cam.t)


def test_head_frame_to_blender() -> None:
    pts = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_allclose(head_to_blender_points(pts), [[1.0, -3.0, 2.0]])
    np.testing.assert_allclose(blender_to_head_points(head_to_blender_points(pts)), pts)
    torch.testing.assert_close(head_to_blender_points(torch.tensor(pts)), torch.tensor([[1.0, -3.0, 2.0]],
                                                                                        dtype=torch.float64))
    # The matrix_world of a posed head maps Blender-frame mesh points to the posed world points.
    R = axis_angle_to_matrix(torch.tensor([0.2, 0.4, -0.1], dtype=torch.float64)).numpy()
    t = np.array([0.1, 0.0, 0.5])
    M = head_pose_to_blender_matrix(R, t)
    x_head = np.random.default_rng(0).normal(size=(5, 3))
    x_obj = head_to_blender_points(x_head)
    np.testing.assert_allclose(x_obj @ M[:3, :3].T + M[:3, 3], x_head @ R.T + t, atol=1e-12)


def test_blender_intrinsics_round_trip() -> None:
    K = np.array([[800.0, 0.0, 330.0], [0.0, 800.0, 228.0], [0.0, 0.0, 1.0]])
    params = intrinsics_to_blender(K, 640, 480)
    assert params["lens"] == pytest.approx(800 * 36 / 640)
    K2 = blender_to_intrinsics(params["lens"], params["sensor_width"], params["shift_x"], params["shift_y"],
                               640, 480)
    np.testing.assert_allclose(K2, K)
    with pytest.raises(ValueError, match="fx == fy"):
        intrinsics_to_blender(np.diag([800.0, 700.0, 1.0]), 640, 480)


def test_camera_validates_shapes() -> None:
    with pytest.raises(ValueError, match=r"Camera\.K"):
        Camera(torch.eye(4), torch.eye(3), torch.zeros(3), 4, 4)
    cam = _camera(torch.float32).to("cpu", torch.float64)
    assert cam.K.dtype == torch.float64 and cam.batch_size == 1
