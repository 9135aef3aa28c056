"""Ground-truth errors on synthetic clips (sample scenes write gt.npz): vertex, landmark, head pose, jitter,
and the split of the vertex error into its rigid and non-rigid, depth and lateral parts.

Vertex error is measured in the camera frame (pose and expression together, what a user sees) and in the
head frame (expression only), in millimetres. Jitter is the mean norm of the second temporal difference of
the camera-frame vertex *error*, so a smooth but offset track scores 0 and only added shake counts.

The split says where an error comes from: `aligned_mm` is what is left after a per-frame rigid alignment
(rotation + translation, no scale) of the tracked mesh onto the truth, i.e. shape and expression alone;
`depth_bias_mm` / `depth_abs_mm` are the signed / absolute error of the mesh centroid along the camera's
optical axis (+ = too far), `lateral_mm` the centroid error across it; `reprojection_px` is the mean image
distance between tracked and true vertices. A monocular tracker's typical failure, a head at the wrong
distance that still projects almost right, shows as large depth error with small reprojection error.
"""

from __future__ import annotations

import numpy as np


def to_camera(vertices: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Head-frame vertices [N, V, 3] -> camera frame with per-frame pose R [N, 3, 3], t [N, 3]."""
    return np.einsum("nij,nvj->nvi", R, vertices) + t[:, None, :]


def project_points(points_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """[N, P, 3] camera-frame points -> [N, P, 2] pixels."""
    homog = points_cam @ K.T
    return homog[..., :2] / homog[..., 2:3]


def rotation_angle_deg(R_a: np.ndarray, R_b: np.ndarray) -> np.ndarray:
    """Geodesic angle between rotations [N, 3, 3] -> [N] degrees."""
    rel = np.einsum("nji,njk->nik", R_a, R_b)
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def geometry_errors(track: dict, gt: dict, landmarks_fn=None) -> dict[str, float]:
    """track: vertices [N,V,3] head frame, head_R [N,3,3], head_t [N,3]; gt: same keys plus K [3,3].

    `landmarks_fn(vertices [N,V,3]) -> [N,68,3]` (the avatar's barycentric landmarks) enables the 2-D
    landmark error. Returns means over frames (mm, degrees, pixels).
    """
    v, g = np.asarray(track["vertices"], np.float64), np.asarray(gt["vertices"], np.float64)
    if v.shape != g.shape:
        raise ValueError(f"geometry errors: tracked vertices {v.shape} and ground truth {g.shape} differ "
                         "(same frames and topology expected)")
    cam = to_camera(v, track["head_R"], track["head_t"])
    cam_gt = to_camera(g, gt["head_R"], gt["head_t"])
    err = cam - cam_gt
    out = {
        "vertex_mm": float(np.linalg.norm(err, axis=-1).mean() * 1000.0),
        "vertex_head_mm": float(np.linalg.norm(v - g, axis=-1).mean() * 1000.0),
        "rotation_deg": float(rotation_angle_deg(track["head_R"], gt["head_R"]).mean()),
        "translation_mm": float(np.linalg.norm(track["head_t"] - gt["head_t"], axis=-1).mean() * 1000.0),
        "jitter_mm": float(np.linalg.norm(err[2:] - 2 * err[1:-1] + err[:-2], axis=-1).mean() * 1000.0)
        if len(err) >= 3 else 0.0,
    }
    out.update(error_split(cam, cam_gt, None if gt.get("K") is None else np.asarray(gt["K"], np.float64)))
    if landmarks_fn is not None:
        lm = to_camera(landmarks_fn(v), track["head_R"], track["head_t"])
        lm_gt = to_camera(landmarks_fn(g), gt["head_R"], gt["head_t"])
        K = np.asarray(gt["K"], np.float64)
        out["landmark_px"] = float(np.linalg.norm(project_points(lm, K) - project_points(lm_gt, K), axis=-1).mean())
    return out


def per_frame_errors(track: dict, gt: dict) -> dict[str, np.ndarray]:
    """The errors a reader follows over time, one value per frame [N]: camera-frame vertex error (mm),
    head rotation error (degrees) and the signed depth error of the mesh centroid (mm, + = too far)."""
    cam = to_camera(np.asarray(track["vertices"], np.float64), track["head_R"], track["head_t"])
    cam_gt = to_camera(np.asarray(gt["vertices"], np.float64), gt["head_R"], gt["head_t"])
    return {
        "vertex_mm": np.linalg.norm(cam - cam_gt, axis=-1).mean(axis=1) * 1000.0,
        "rotation_deg": rotation_angle_deg(track["head_R"], gt["head_R"]),
        "depth_mm": (cam.mean(axis=1) - cam_gt.mean(axis=1))[:, 2] * 1000.0,
    }


def rigid_residual(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per-frame Procrustes (Kabsch, no scale): `source` [N, V, 3] rigidly moved onto `target` -> residual
    vectors [N, V, 3] of the best alignment."""
    src_c = source - source.mean(axis=1, keepdims=True)
    tgt_c = target - target.mean(axis=1, keepdims=True)
    u, _, vt = np.linalg.svd(np.einsum("nvi,nvj->nij", src_c, tgt_c))
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    fix = np.ones((len(d), 3))
    fix[:, 2] = d
    rotation = np.einsum("nji,nj,nkj->nik", vt, fix, u)  # R = V diag(1, 1, d) Uᵀ
    return np.einsum("nij,nvj->nvi", rotation, src_c) - tgt_c


def error_split(cam: np.ndarray, cam_gt: np.ndarray, K: np.ndarray | None = None) -> dict[str, float]:
    """Camera-frame vertices [N, V, 3] (tracked, true) -> the rigid / depth / lateral split (module docstring)."""
    centroid_error = cam.mean(axis=1) - cam_gt.mean(axis=1)
    out = {
        "aligned_mm": float(np.linalg.norm(rigid_residual(cam, cam_gt), axis=-1).mean() * 1000.0),
        "depth_bias_mm": float(centroid_error[:, 2].mean() * 1000.0),
        "depth_abs_mm": float(np.abs(centroid_error[:, 2]).mean() * 1000.0),
        "lateral_mm": float(np.linalg.norm(centroid_error[:, :2], axis=-1).mean() * 1000.0),
    }
    if K is not None:
        out["reprojection_px"] = float(np.linalg.norm(project_points(cam, K) - project_points(cam_gt, K),
                                                      axis=-1).mean())
    return out
