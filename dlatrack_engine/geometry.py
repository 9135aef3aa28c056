"""Rotation and mesh geometry helpers: batched, differentiable, float32 or float64.

Head pose (docs/conventions.md) is an axis-angle r and a translation t with `x_world = R(r) @ x + t`;
fitting optimises r directly, so the Rodrigues map must have finite gradients at r = 0 (the usual start).
"""

from __future__ import annotations

import torch

# Below this squared angle the Taylor series replaces sin(θ)/θ terms (the exact forms lose precision
# and their gradients divide by zero at θ = 0).
_SMALL_ANGLE_SQ = 1e-6


def _skew(v: torch.Tensor) -> torch.Tensor:
    """[..., 3] -> [..., 3, 3] cross-product matrix so that skew(a) @ b = a × b."""
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack(
        [
            torch.stack([zero, -z, y], -1),
            torch.stack([z, zero, -x], -1),
            torch.stack([-y, x, zero], -1),
        ],
        -2,
    )


def axis_angle_to_matrix(r: torch.Tensor) -> torch.Tensor:
    """Rodrigues: axis-angle [..., 3] (angle = norm, radians) -> rotation matrix [..., 3, 3].

    R = I + A(θ) K + B(θ) K², K = skew(r), A = sin θ / θ, B = (1 - cos θ) / θ²; series near θ = 0 so the
    value and the gradient stay exact there.
    """
    if r.shape[-1] != 3:
        raise ValueError(f"axis_angle_to_matrix: expected [..., 3], got shape {tuple(r.shape)}")
    theta_sq = (r * r).sum(-1)
    small = theta_sq < _SMALL_ANGLE_SQ
    safe_sq = torch.where(small, torch.ones_like(theta_sq), theta_sq)
    theta = safe_sq.sqrt()
    a = torch.where(small, 1.0 - theta_sq / 6.0 + theta_sq**2 / 120.0, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta_sq / 24.0 + theta_sq**2 / 720.0, (1.0 - torch.cos(theta)) / safe_sq)
    k = _skew(r)
    eye = torch.eye(3, dtype=r.dtype, device=r.device).expand(k.shape)
    return eye + a[..., None, None] * k + b[..., None, None] * (k @ k)


def _matrix_to_quaternion(m: torch.Tensor) -> torch.Tensor:
    """[..., 3, 3] -> unit quaternion [..., 4] (w, x, y, z), picking the best-conditioned of four
    candidate formulas so rotations near π stay accurate (as in PyTorch3D)."""
    m00, m01, m02 = m[..., 0, 0], m[..., 0, 1], m[..., 0, 2]
    m10, m11, m12 = m[..., 1, 0], m[..., 1, 1], m[..., 1, 2]
    m20, m21, m22 = m[..., 2, 0], m[..., 2, 1], m[..., 2, 2]
    q_abs = torch.stack(
        [1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1
    ).clamp_min(0.0)
    q_abs = torch.where(q_abs > 0, q_abs.clamp_min(1e-30).sqrt(), torch.zeros_like(q_abs))
    candidates = torch.stack(
        [
            torch.stack([q_abs[..., 0] ** 2, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, q_abs[..., 1] ** 2, m10 + m01, m02 + m20], -1),
            torch.stack([m02 - m20, m10 + m01, q_abs[..., 2] ** 2, m12 + m21], -1),
            torch.stack([m10 - m01, m20 + m02, m21 + m12, q_abs[..., 3] ** 2], -1),
        ],
        -2,
    ) / (2.0 * q_abs[..., None].clamp_min(0.1))
    best = q_abs.argmax(-1)[..., None, None].expand(*q_abs.shape[:-1], 1, 4)
    q = candidates.gather(-2, best).squeeze(-2)
    return q / q.norm(dim=-1, keepdim=True)


def matrix_to_axis_angle(R: torch.Tensor) -> torch.Tensor:
    """Rotation matrix [..., 3, 3] -> axis-angle [..., 3] with angle in [0, π]; inverse of
    `axis_angle_to_matrix` (via a quaternion, which is stable near both 0 and π)."""
    if R.shape[-2:] != (3, 3):
        raise ValueError(f"matrix_to_axis_angle: expected [..., 3, 3], got shape {tuple(R.shape)}")
    q = _matrix_to_quaternion(R)
    q = torch.where(q[..., :1] < 0, -q, q)  # w >= 0 -> angle in [0, π]
    w, xyz = q[..., 0], q[..., 1:]
    n = xyz.norm(dim=-1)
    small = n < 1e-6
    safe_n = torch.where(small, torch.ones_like(n), n)
    # θ = 2 atan2(|xyz|, w); r = xyz θ / |xyz|, whose limit at |xyz| -> 0 is 2 xyz / w.
    scale = torch.where(small, 2.0 / w.clamp_min(1e-12), 2.0 * torch.atan2(safe_n, w) / safe_n)
    return xyz * scale[..., None]


def transform_points(R: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """R [..., 3, 3], t [..., 3], x [..., N, 3] -> R @ x + t, [..., N, 3]."""
    return x @ R.transpose(-1, -2) + t[..., None, :]


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Unnormalised face normals [B, F, 3] = (v1 - v0) × (v2 - v0); length = twice the area."""
    f = faces.long()
    v0, v1, v2 = vertices[:, f[:, 0]], vertices[:, f[:, 1]], vertices[:, f[:, 2]]
    return torch.linalg.cross(v1 - v0, v2 - v0, dim=-1)


def vertex_normals(vertices: torch.Tensor, faces: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Area-weighted unit vertex normals [B, V, 3] from vertices [B, V, 3] and faces [F, 3] (CCW = outward)."""
    if vertices.dim() != 3 or vertices.shape[-1] != 3:
        raise ValueError(f"vertex_normals: vertices must be [B, V, 3], got {tuple(vertices.shape)}")
    fn = face_normals(vertices, faces)
    f = faces.long().reshape(-1)
    normals = torch.zeros_like(vertices).index_add(1, f, fn.repeat_interleave(3, dim=1))
    return normals / normals.norm(dim=-1, keepdim=True).clamp_min(eps)
