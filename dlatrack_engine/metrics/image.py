"""Image metrics of Table 1 between the registered render and the input frame, on the face region.

All on 8-bit sRGB values (what people see and what the paper's numbers are on): L2 is the mean squared
error in 0-255 units over face pixels (its scale matches the paper's PSNR/L2 pairs: PSNR = 10 log10(255²/L2)),
PSNR from that MSE, SSIM (Wang et al. 2004, 11x11 Gaussian window σ = 1.5, on luma) averaged over face
pixels. The face region is a mask supplied by the caller (evaluate.py uses the convex hull of the input
frame's landmarks: the same region for every method, so a method cannot win by covering fewer pixels).
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from dlatrack_engine.colour import linear_to_srgb


def _to255(image_linear: np.ndarray) -> np.ndarray:
    return np.clip(linear_to_srgb(np.clip(image_linear, 0.0, 1.0)), 0.0, 1.0).astype(np.float64) * 255.0


def _check(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"image metrics: images must both be [H, W, 3], got {a.shape} and {b.shape}")
    m = mask.reshape(mask.shape[0], mask.shape[1]) > 0.5
    if m.shape != a.shape[:2]:
        raise ValueError(f"image metrics: mask {mask.shape} does not match image {a.shape}")
    if not m.any():
        raise ValueError("image metrics: the face-region mask is empty")
    return m


def l2_error(render: np.ndarray, frame: np.ndarray, mask: np.ndarray) -> float:
    """Mean squared error (0-255 sRGB units) over mask pixels and channels; images are linear RGB."""
    m = _check(render, frame, mask)
    diff = _to255(render)[m] - _to255(frame)[m]
    return float(np.mean(diff**2))


def psnr(render: np.ndarray, frame: np.ndarray, mask: np.ndarray) -> float:
    """10 log10(255² / MSE) on the face region (capped at 100 dB for identical images)."""
    mse = l2_error(render, frame, mask)
    return 100.0 if mse <= 1e-10 else float(10.0 * math.log10(255.0**2 / mse))


def _luma(image255: np.ndarray) -> np.ndarray:
    return image255 @ np.array([0.299, 0.587, 0.114])


def ssim(render: np.ndarray, frame: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM of the luma over the face region (Gaussian window 11, σ 1.5, K1 0.01, K2 0.03)."""
    m = _check(render, frame, mask)
    x, y = _luma(_to255(render)), _luma(_to255(frame))
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx, syy, sxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
    ssim_map = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx**2 + my**2 + c1) * (sxx + syy + c2))
    return float(ssim_map[m].mean())


def landmark_hull_mask(points: np.ndarray, height: int, width: int) -> np.ndarray:
    """Face region: filled convex hull of 2-D landmarks [68, 2] (pixels) -> [H, W] float32 0/1."""
    mask = np.zeros((height, width), np.uint8)
    hull = cv2.convexHull(np.round(points - 0.5).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(np.float32)
