"""Engine conventions → Blender conventions, in numpy only (the add-on cannot import the torch engine).

Frames (docs/conventions.md):
- head frame: +X subject's left, +Y up, +Z out of the face;
- engine world = the OpenCV camera frame of the video (x right, y down, z forward);
- Blender object frame of the avatar: head (x, y, z) -> (x, -z, y), so the face looks along Blender -Y;
- Blender world: the OpenCV world turned so that Z is up: (x, y, z) -> (x, z, -y). The video camera sits
  at the origin looking along +Y, which is how a Blender user expects a "front" camera to stand.

`tests/addon/test_convert.py` checks these against the engine's `render.camera` math.
"""

from __future__ import annotations

import numpy as np

# Head frame -> Blender object frame: (x, y, z) -> (x, -z, y).
HEAD_TO_OBJECT = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
# OpenCV world (camera frame of the video) -> Blender world: (x, y, z) -> (x, z, -y), Z up.
CV_WORLD_TO_BLENDER = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
# OpenCV camera axes (y down, z forward) -> Blender camera axes (y up, looks along -z).
CV_CAM_TO_BLENDER_CAM = np.diag([1.0, -1.0, -1.0])

SENSOR_SIZE_MM = 36.0


def head_vertices_to_object(vertices: np.ndarray) -> np.ndarray:
    """`[..., V, 3]` head-frame vertices -> Blender object-frame vertices (float32, C order)."""
    vertices = np.asarray(vertices)
    if vertices.shape[-1] != 3:
        raise ValueError(f"vertices: expected shape [..., V, 3], got {vertices.shape}")
    out = np.empty(vertices.shape, dtype=np.float32)
    out[..., 0] = vertices[..., 0]
    out[..., 1] = -vertices[..., 2]
    out[..., 2] = vertices[..., 1]
    return out


def _check_rotation(rotation: np.ndarray, what: str) -> np.ndarray:
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape[-2:] != (3, 3):
        raise ValueError(f"{what}: expected rotation matrices [..., 3, 3], got {rotation.shape}")
    return rotation


def head_pose_to_object_matrix(head_R: np.ndarray, head_t: np.ndarray) -> np.ndarray:
    """Head pose (x_world = R x_head + t, OpenCV world) -> the avatar object's Blender `matrix_world`.

    The object holds vertices in the object frame (`HEAD_TO_OBJECT @ x_head`), so its world matrix is
    `CV_WORLD_TO_BLENDER @ [R | t] @ HEAD_TO_OBJECT^-1`. Works on `[N, 3, 3]`/`[N, 3]` batches; returns
    `[..., 4, 4]` float64.
    """
    head_R = _check_rotation(head_R, "head_R")
    head_t = np.asarray(head_t, dtype=np.float64)
    if head_t.shape != head_R.shape[:-1]:
        raise ValueError(
            f"head_t: expected shape {head_R.shape[:-1]} to match head_R {head_R.shape}, got {head_t.shape}"
        )
    matrix = np.zeros((*head_R.shape[:-2], 4, 4))
    matrix[..., :3, :3] = CV_WORLD_TO_BLENDER @ head_R @ HEAD_TO_OBJECT.T
    matrix[..., :3, 3] = head_t @ CV_WORLD_TO_BLENDER.T
    matrix[..., 3, 3] = 1.0
    return matrix


def opencv_extrinsics_to_camera_matrix(cam_R: np.ndarray | None = None, cam_t: np.ndarray | None = None) -> np.ndarray:
    """OpenCV extrinsics (x_cam = R x_world + t) -> the Blender camera object's `matrix_world` [4, 4].

    In the wild the video camera is the world (R = I, t = 0), which gives a camera at the origin looking
    along Blender +Y with +Z up.
    """
    cam_R = np.eye(3) if cam_R is None else _check_rotation(cam_R, "camera R")
    cam_t = np.zeros(3) if cam_t is None else np.asarray(cam_t, dtype=np.float64).reshape(3)
    matrix = np.eye(4)
    # Camera-to-world in OpenCV axes is [R^T | -R^T t]; change the world to Blender's and the camera
    # axes to Blender's camera axes (the conventions' R_blender_cam = diag(1, -1, -1) @ R_opencv).
    matrix[:3, :3] = CV_WORLD_TO_BLENDER @ cam_R.T @ CV_CAM_TO_BLENDER_CAM
    matrix[:3, 3] = CV_WORLD_TO_BLENDER @ (-cam_R.T @ cam_t)
    return matrix


def intrinsics_to_blender_camera(K: np.ndarray, width: int, height: int) -> dict[str, float | str]:
    """Pinhole K (pixels) + image size -> Blender camera data settings (lens, sensor fit, shifts, aspect).

    Blender measures lens and shift against the fitted sensor dimension; fitting the larger image side
    makes `lens = f * sensor / max(W, H)`. The principal point becomes a shift: a point on the optical axis
    lands at `u = W/2 - shift_x * W_fit` and `v = H/2 + shift_y * W_fit` (v down).
    Non-square pixels (fx != fy) go to the render pixel aspect.
    """
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3):
        raise ValueError(f"camera K: expected a 3x3 matrix, got shape {K.shape}")
    if width <= 0 or height <= 0:
        raise ValueError(f"image size: expected positive width/height, got {width}x{height}")
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if fx <= 0 or fy <= 0:
        raise ValueError(f"camera K: focal lengths must be positive, got fx={fx}, fy={fy}")
    # Blender's pixel aspect stretches x by aspect_x / aspect_y; fold fx != fy into it, and fit the
    # sensor to the side that the stretch leaves in true pixels (vertical focal length fy is kept).
    aspect_x, aspect_y = (1.0, fx / fy) if fx >= fy else (fy / fx, 1.0)
    ycor = fx / fy  # Blender's y correction: one pixel row is `ycor` pixel columns tall.
    horizontal = width >= height * ycor
    if horizontal:
        lens = fx * SENSOR_SIZE_MM / width
        shift_x, shift_y = (width / 2.0 - cx) / width, (cy - height / 2.0) * ycor / width
    else:
        lens = fy * SENSOR_SIZE_MM / height
        shift_x, shift_y = (width / 2.0 - cx) / (ycor * height), (cy - height / 2.0) / height
    return {
        "sensor_fit": "HORIZONTAL" if horizontal else "VERTICAL",
        "sensor_width": SENSOR_SIZE_MM,
        "sensor_height": SENSOR_SIZE_MM,
        "lens": float(lens),
        "shift_x": float(shift_x),
        "shift_y": float(shift_y),
        "pixel_aspect_x": float(aspect_x),
        "pixel_aspect_y": float(aspect_y),
    }


def view_vector_in_head(head_R: np.ndarray, head_t: np.ndarray, camera_center_cv: np.ndarray) -> np.ndarray:
    """Eq. 1's v_v: unit vector from the head centre to a camera centre, in the head frame.

    `camera_center_cv` is the camera centre in the engine (OpenCV) world; batches of poses `[N, 3, 3]`,
    `[N, 3]` give `[N, 3]`.
    """
    head_R = _check_rotation(head_R, "head_R")
    head_t = np.asarray(head_t, dtype=np.float64)
    offset = np.asarray(camera_center_cv, dtype=np.float64) - head_t
    # x_head = R^T (x_world - t)
    direction = np.einsum("...ji,...j->...i", head_R, offset)
    norm = np.linalg.norm(direction, axis=-1, keepdims=True)
    if np.any(norm < 1e-12):
        raise ValueError("view vector: the camera centre coincides with the head centre")
    return direction / norm


def blender_point_to_cv_world(point: np.ndarray) -> np.ndarray:
    """A Blender world position -> the engine's OpenCV world (inverse of CV_WORLD_TO_BLENDER)."""
    return np.asarray(point, dtype=np.float64) @ CV_WORLD_TO_BLENDER


def matrix_to_quaternions(matrix: np.ndarray) -> np.ndarray:
    """`[N, 3, 3]` rotations -> `[N, 4]` (w, x, y, z) unit quaternions with consecutive signs aligned.

    Aligning signs (q and -q are the same rotation) keeps LINEAR keyframe interpolation from swinging the
    head the long way round between two frames.
    """
    m = _check_rotation(matrix, "rotation").reshape(-1, 3, 3)
    trace = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    # The four candidate magnitudes; pick the largest per rotation for numerical stability (Shepperd).
    candidates = np.stack(
        [1.0 + trace, 1.0 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2],
         1.0 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], 1.0 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], axis=1,
    )  # fmt: skip
    best = np.argmax(candidates, axis=1)
    quats = np.empty((m.shape[0], 4))
    for k in range(4):
        sel = best == k
        if not np.any(sel):
            continue
        ms = m[sel]
        s = 2.0 * np.sqrt(np.maximum(candidates[sel, k], 1e-300))
        if k == 0:
            q = [
                s / 4,
                (ms[:, 2, 1] - ms[:, 1, 2]) / s,
                (ms[:, 0, 2] - ms[:, 2, 0]) / s,
                (ms[:, 1, 0] - ms[:, 0, 1]) / s,
            ]
        elif k == 1:
            q = [
                (ms[:, 2, 1] - ms[:, 1, 2]) / s,
                s / 4,
                (ms[:, 0, 1] + ms[:, 1, 0]) / s,
                (ms[:, 0, 2] + ms[:, 2, 0]) / s,
            ]
        elif k == 2:
            q = [
                (ms[:, 0, 2] - ms[:, 2, 0]) / s,
                (ms[:, 0, 1] + ms[:, 1, 0]) / s,
                s / 4,
                (ms[:, 1, 2] + ms[:, 2, 1]) / s,
            ]
        else:
            q = [
                (ms[:, 1, 0] - ms[:, 0, 1]) / s,
                (ms[:, 0, 2] + ms[:, 2, 0]) / s,
                (ms[:, 1, 2] + ms[:, 2, 1]) / s,
                s / 4,
            ]
        quats[sel] = np.stack(q, axis=1)
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    if quats[0, 0] < 0:
        quats[0] = -quats[0]
    for i in range(1, len(quats)):
        if np.dot(quats[i], quats[i - 1]) < 0:
            quats[i] = -quats[i]
    return quats
