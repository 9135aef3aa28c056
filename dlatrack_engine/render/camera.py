"""Cameras: intrinsics/extrinsics, projection Π, clip space, look-at, and OpenCV <-> OpenGL <-> Blender.

Conventions (docs/conventions.md, written down once here in code):
- OpenCV camera: `x_cam = R @ x_world + t`; x right, y down, z forward. Pixel (col i, row j) has its centre at
  (i + 0.5, j + 0.5); the image's top-left corner is (0, 0).
- Clip space for the rasteriser: `x_ndc = 2u/W - 1`, `y_ndc = 2v/H - 1` (no flip, so rasterised row 0 is the
  image's top row), `z_ndc` in [-1, 1] from near to far, `w = z_cam`.
- OpenGL camera: x right, y up, looking along -z: `R_gl = diag(1, -1, -1) @ R_cv` (same t flipped likewise).
- Blender camera object: its local frame is the OpenGL camera's, so `R_blender_cam = diag(1, -1, -1) @ R_cv`;
  its `matrix_world` is the camera-to-world transform.
- Head frame -> Blender object frame: `(x, y, z) -> (x, -z, y)` (Blender is Z-up; the face looks along -Y).

The Blender helpers accept numpy arrays or torch tensors, so the add-on's tests can check them against bpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlatrack_engine.geometry import transform_points

# OpenCV camera axes -> OpenGL/Blender camera axes (and back: it is its own inverse).
CV_TO_GL = np.diag([1.0, -1.0, -1.0])
# Head frame -> Blender object frame: (x, y, z) -> (x, -z, y).
HEAD_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@dataclass
class Camera:
    """A batch of pinhole cameras (OpenCV convention).

    K [B, 3, 3] intrinsics in pixels; R [B, 3, 3], t [B, 3] world -> camera; image `width` x `height`.
    """

    K: torch.Tensor
    R: torch.Tensor
    t: torch.Tensor
    width: int
    height: int

    def __post_init__(self) -> None:
        if self.K.dim() == 2:
            self.K = self.K[None]
        if self.R.dim() == 2:
            self.R = self.R[None]
        if self.t.dim() == 1:
            self.t = self.t[None]
        for name, value, tail in (("K", self.K, (3, 3)), ("R", self.R, (3, 3)), ("t", self.t, (3,))):
            if tuple(value.shape[1:]) != tail:
                raise ValueError(f"Camera.{name}: expected [B, {', '.join(map(str, tail))}], "
                                 f"got {tuple(value.shape)}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise ValueError(f"Camera: width and height must be positive, got {self.width}x{self.height}")

    @property
    def batch_size(self) -> int:
        return max(self.K.shape[0], self.R.shape[0], self.t.shape[0])

    def center(self) -> torch.Tensor:
        """Camera centres in world coordinates [B, 3]: -Rᵀ t."""
        return -(self.R.transpose(-1, -2) @ self.t[..., None])[..., 0]

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Camera:
        return Camera(self.K.to(device, dtype), self.R.to(device, dtype), self.t.to(device, dtype),
                      self.width, self.height)

    def world_to_camera(self, points_world: torch.Tensor) -> torch.Tensor:
        """[B, N, 3] world -> [B, N, 3] camera frame."""
        return transform_points(self.R, self.t, points_world)


def project(points_world: torch.Tensor, camera: Camera) -> tuple[torch.Tensor, torch.Tensor]:
    """Perspective projection Π: world points [B, N, 3] -> (pixel coords uv [B, N, 2], depth z_cam [B, N])."""
    x_cam = camera.world_to_camera(points_world)
    depth = x_cam[..., 2]
    homog = x_cam @ camera.K.transpose(-1, -2)
    uv = homog[..., :2] / homog[..., 2:3]
    return uv, depth


def clip_from_camera(
    points_cam: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    near: float = 0.01,
    far: float = 10.0,
) -> torch.Tensor:
    """Camera-frame points [B, N, 3] -> homogeneous clip coordinates [B, N, 4] for the rasteriser.

    w = z_cam; x/w = 2u/W - 1 and y/w = 2v/H - 1 with (u, v) the OpenCV pixel projection (skew included);
    z/w = (a z + b) / z maps z = near to -1 and z = far to +1 (OpenGL depth range).
    """
    if K.dim() == 2:
        K = K[None]
    x, y, z = points_cam.unbind(-1)
    fx, s, cx = K[:, 0, 0, None], K[:, 0, 1, None], K[:, 0, 2, None]
    fy, cy = K[:, 1, 1, None], K[:, 1, 2, None]
    a = (far + near) / (far - near)
    b = -2.0 * far * near / (far - near)
    x_clip = 2.0 * (fx * x + s * y + cx * z) / width - z
    y_clip = 2.0 * (fy * y + cy * z) / height - z
    z_clip = a * z + b
    return torch.stack([x_clip, y_clip, z_clip, z], -1)


# docs/conventions.md names it this way.
clip_from_opencv = clip_from_camera


def clip_from_world(points_world: torch.Tensor, camera: Camera, near: float = 0.01,
                    far: float = 10.0) -> torch.Tensor:
    """World points [B, N, 3] -> clip coordinates [B, N, 4] through `camera`."""
    return clip_from_camera(camera.world_to_camera(points_world), camera.K, camera.width, camera.height,
                            near, far)


def ndc_depth_to_camera_z(z_ndc: torch.Tensor, near: float = 0.01, far: float = 10.0) -> torch.Tensor:
    """Invert the depth map of `clip_from_camera`: z_ndc in [-1, 1] -> z_cam in [near, far]."""
    a = (far + near) / (far - near)
    b = -2.0 * far * near / (far - near)
    return b / (z_ndc - a)


def look_at(eye: torch.Tensor, target: torch.Tensor, up: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV extrinsics (R [..., 3, 3], t [..., 3]) of a camera at `eye` looking at `target`; `up` is the
    world direction that should appear upwards in the image (image y points down, so y_cam ≈ -up)."""
    z = target - eye
    z = z / z.norm(dim=-1, keepdim=True)
    x = torch.linalg.cross(z, up.expand_as(z), dim=-1)
    x_norm = x.norm(dim=-1, keepdim=True)
    if bool((x_norm < 1e-9).any()):
        raise ValueError("look_at: `up` is parallel to the viewing direction; pick another up vector")
    x = x / x_norm
    y = torch.linalg.cross(z, x, dim=-1)
    R = torch.stack([x, y, z], -2)
    t = -(R @ eye[..., None])[..., 0]
    return R, t


def _as_numpy(a: np.ndarray | torch.Tensor) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def opencv_to_blender_camera(
    R: np.ndarray | torch.Tensor,
    t: np.ndarray | torch.Tensor,
    world_to_blender: np.ndarray | None = None,
) -> np.ndarray:
    """OpenCV extrinsics (R [3, 3], t [3], world -> camera) -> Blender camera `matrix_world` [4, 4].

    `world_to_blender` [3, 3] maps engine world coordinates to Blender world coordinates (identity by
    default; pass `HEAD_TO_BLENDER` when the engine's world is a head-like Y-up frame).
    """
    W = np.eye(3) if world_to_blender is None else _as_numpy(world_to_blender)
    R_cv, t_cv = _as_numpy(R), _as_numpy(t).reshape(3)
    center = -R_cv.T @ t_cv
    R_bl_cam = CV_TO_GL @ R_cv  # world -> Blender camera axes
    M = np.eye(4)
    M[:3, :3] = W @ R_bl_cam.T
    M[:3, 3] = W @ center
    return M


def blender_to_opencv_camera(
    matrix_world: np.ndarray | torch.Tensor,
    world_to_blender: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Blender camera `matrix_world` [4, 4] (no scale) -> OpenCV (R [3, 3], t [3]); inverse of
    `opencv_to_blender_camera` for the same `world_to_blender`."""
    W = np.eye(3) if world_to_blender is None else _as_numpy(world_to_blender)
    M = _as_numpy(matrix_world)
    if M.shape != (4, 4):
        raise ValueError(f"blender_to_opencv_camera: matrix_world must be 4x4, got {M.shape}")
    cam_to_world = W.T @ M[:3, :3]
    center = W.T @ M[:3, 3]
    R_cv = CV_TO_GL @ cam_to_world.T
    return R_cv, -R_cv @ center


def opencv_to_opengl_camera(R: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """OpenCV extrinsics -> OpenGL view rotation/translation (y up, looking along -z). Self-inverse."""
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=R.dtype, device=R.device)
    return flip[:, None] * R, flip * t


opengl_to_opencv_camera = opencv_to_opengl_camera


def head_to_blender_points(points: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Head-frame points [..., 3] -> Blender object frame: (x, y, z) -> (x, -z, y)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    stack = torch.stack if isinstance(points, torch.Tensor) else np.stack
    return stack([x, -z, y], -1)


def blender_to_head_points(points: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Blender object frame [..., 3] -> head frame: (x, y, z) -> (x, z, -y)."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    stack = torch.stack if isinstance(points, torch.Tensor) else np.stack
    return stack([x, z, -y], -1)


def head_pose_to_blender_matrix(
    R: np.ndarray | torch.Tensor,
    t: np.ndarray | torch.Tensor,
    world_to_blender: np.ndarray | None = None,
) -> np.ndarray:
    """Head pose (x_world = R x_head + t) -> the head object's Blender `matrix_world` [4, 4], for a mesh whose
    vertices are stored in the Blender object frame (`head_to_blender_points`)."""
    W = np.eye(3) if world_to_blender is None else _as_numpy(world_to_blender)
    M = np.eye(4)
    M[:3, :3] = W @ _as_numpy(R) @ HEAD_TO_BLENDER.T
    M[:3, 3] = W @ _as_numpy(t).reshape(3)
    return M


def intrinsics_to_blender(K: np.ndarray | torch.Tensor, width: int, height: int) -> dict[str, float]:
    """Pinhole K -> Blender camera data (lens and sensor width in mm, sensor_fit 'HORIZONTAL', shift_x/y).

    Blender models square pixels without skew, so K must have fx == fy (within 0.1 %) and no skew.
    """
    K = _as_numpy(K)
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if abs(fx - fy) > 1e-3 * fx or abs(K[0, 1]) > 1e-6 * fx:
        raise ValueError(f"intrinsics_to_blender: Blender needs fx == fy and zero skew, got K={K.tolist()}")
    sensor_width = 36.0
    # With sensor_fit 'HORIZONTAL' Blender measures lens shift in units of the image width.
    return {
        "lens": float(fx * sensor_width / width),
        "sensor_width": sensor_width,
        "sensor_fit": "HORIZONTAL",
        "shift_x": float((width / 2.0 - cx) / width),
        "shift_y": float((cy - height / 2.0) / width),
    }


def blender_to_intrinsics(lens: float, sensor_width: float, shift_x: float, shift_y: float,
                          width: int, height: int) -> np.ndarray:
    """Inverse of `intrinsics_to_blender` (sensor_fit 'HORIZONTAL', pixel aspect 1)."""
    f = lens / sensor_width * width
    return np.array([[f, 0.0, width / 2.0 - shift_x * width],
                     [0.0, f, height / 2.0 + shift_y * width],
                     [0.0, 0.0, 1.0]])
