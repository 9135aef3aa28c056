"""Step 1 (Eq. 6): per-frame r̃, t̃, z̃ from 2-D landmark reprojection, all frames in one batch.

A PnP solve (OpenCV, the avatar's mean-face landmarks against the detections) starts every frame close to
its pose, then Adam refines pose and expression jointly with the paper's schedule. Without the PnP start a
head turned 60° can fall into the mirrored-pose minimum of Eq. 6.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import cv2
import numpy as np
import torch

from dlatrack_engine.fit.losses import acceleration_penalty, landmark_loss
from dlatrack_engine.fit.optim import run_adam
from dlatrack_engine.fit.params import FrameParams, ScaledParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.schedule import Schedule

log = logging.getLogger(__name__)

# Head facing the camera: head +Y (up) -> camera -y, head +Z (out of the face) -> camera -z.
FACING_CAMERA = np.array([np.pi, 0.0, 0.0])


def pnp_init(model_points: np.ndarray, image_points: np.ndarray, weights: np.ndarray, K: np.ndarray) -> FrameParams:
    """Per-frame rigid pose from 3-D mesh landmarks [68, 3] (head frame) and detections [N, 68, 2].

    Each frame starts from the previous frame's solution (a video moves little between frames) and from a
    head facing the camera, and keeps the one with the lower reprojection error: a single start can land in
    the mirrored or behind-the-camera solution that a noisy detection makes nearly as good.
    """
    n = len(image_points)
    r = np.zeros((n, 3))
    t = np.zeros((n, 3))
    K64 = np.asarray(K, np.float64)
    previous: tuple[np.ndarray, np.ndarray] | None = None
    for i in range(n):
        use = weights[i] > 0
        obj = model_points[use].astype(np.float64)
        img = image_points[i][use].astype(np.float64)
        best: tuple[float, np.ndarray, np.ndarray] | None = None
        if use.sum() >= 6:
            starts = [(FACING_CAMERA.reshape(3, 1).copy(), _depth_guess(obj, img, K64))]
            if previous is not None:
                starts.insert(0, (previous[0].copy(), previous[1].copy()))
            for rvec0, tvec0 in starts:
                ok, rvec, tvec = cv2.solvePnP(obj, img, K64, None, rvec0, tvec0, useExtrinsicGuess=True,
                                              flags=cv2.SOLVEPNP_ITERATIVE)
                if not ok or float(tvec[2, 0]) <= 0:
                    continue
                projected, _ = cv2.projectPoints(obj, rvec, tvec, K64, None)
                error = float(np.mean(np.linalg.norm(projected[:, 0] - img, axis=1)))
                if best is None or error < best[0]:
                    best = (error, rvec, tvec)
        if best is not None:
            r[i], t[i] = best[1][:, 0], best[2][:, 0]
            previous = (best[1], best[2])
        else:
            r[i], t[i] = FACING_CAMERA, _depth_guess(model_points, image_points[i], K64)[:, 0]
    return FrameParams(torch.tensor(r, dtype=torch.float32), torch.tensor(t, dtype=torch.float32),
                       torch.zeros(0))


def _depth_guess(obj: np.ndarray, img: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Translation putting the landmarks' centre on the detections' centre at the depth matching their size."""
    size3 = np.linalg.norm(obj.max(0)[:2] - obj.min(0)[:2])
    size2 = np.linalg.norm(img.max(0) - img.min(0))
    depth = K[0, 0] * size3 / max(size2, 1e-6)
    centre = img.mean(0)
    x = (centre[0] - K[0, 2]) / K[0, 0] * depth
    y = (centre[1] - K[1, 2]) / K[1, 1] * depth
    return np.array([[x], [y], [depth]])


def fit_landmarks(scene: FaceScene, detected: torch.Tensor, weights: torch.Tensor, schedule: Schedule,
                  init: FrameParams | None = None, cancel: threading.Event | None = None,
                  on_iteration: Callable[[int, float], None] | None = None,
                  times: torch.Tensor | None = None) -> tuple[FrameParams, torch.Tensor]:
    """Eq. 6 for all frames at once: detected [N, 68, 2] pixels, weights [N, 68] -> (params, loss [N]).
    `times` [N]: the frames' numbers in the video for the temporal prior (None: consecutive frames).

    Loss per frame is Σ_i w_i ‖Π(r̃ M̃(ℓ_i) + t̃) − L_i‖² + z_prior ‖z̃‖² (the prior keeps the 68 points from
    pulling the expression code into implausible shapes).
    """
    device = scene.device
    detected = detected.to(device)
    weights = weights.to(device)
    n = detected.shape[0]
    latent = scene.avatar.dam.cfg.latent_size
    if init is None:
        with torch.no_grad():
            mean_marks = scene.landmarks_3d(torch.zeros(1, latent, device=device))[0]
        init = pnp_init(mean_marks.cpu().numpy(), detected.cpu().numpy(), weights.cpu().numpy(), scene.K.cpu().numpy())
        init = FrameParams(init.r.to(device), init.t.to(device), torch.zeros(n, latent, device=device))
    s1 = schedule.step1
    leaves = ScaledParams(init, schedule.rotation_unit, schedule.translation_unit)

    def loss_fn() -> torch.Tensor:
        params = leaves.params()
        per_frame = landmark_loss(scene.landmarks_2d(params), detected, weights)  # Eq. 6
        total = per_frame + s1.z_prior_weight * params.z.pow(2).sum(-1)
        if s1.translation_smoothness > 0 or s1.rotation_smoothness > 0:
            rot_acc, trans_acc = acceleration_penalty(params.rotation(), params.t * 1000.0, times)
            total = total + s1.rotation_smoothness * rot_acc + s1.translation_smoothness * trans_acc
        return total.sum()

    _, its = run_adam(leaves.parameters(), loss_fn, s1.iterations, s1.lr, s1.lr_halving, s1.tolerance,
                         s1.patience, cancel, on_iteration)
    result = leaves.params()
    with torch.no_grad():
        final = landmark_loss(scene.landmarks_2d(result), detected, weights)
    log.info("step 1: %d frames, %d iterations, mean landmark error %.3g px", n, its,
             float((final / weights.sum(-1).clamp_min(1)).sqrt().mean()))
    return result.detach(), final.detach()
