"""SSIM (metrics/image.py) against scikit-image's independent implementation on frames of a real sample clip.

Same definition on both sides: luma of the 8-bit sRGB frames, Gaussian window σ = 1.5 truncated at radius 5
(11 x 11), population (not sample) covariances, K1 = 0.01, K2 = 0.03, data range 255, reflected border, and the
SSIM map averaged over the mask (the face mask, or every pixel of a crop through the face, where the border
handling counts). A different window (7 x 7 or 13 x 13, σ 1 or 2) moves the score by 3e-4 to
0.1 on these pairs; the two implementations agree to ~1e-8.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.metrics import structural_similarity

from dlatrack_engine.colour import srgb8_to_linear
from dlatrack_engine.metrics import image

CLIP = Path(__file__).resolve().parents[2] / "sample_scenes" / "clips" / "warm_key_cool_fill"
LUMA = np.array([0.299, 0.587, 0.114])


def _frame(index: int) -> np.ndarray:
    bgr = cv2.imread(str(CLIP / "frames" / f"{index:06d}.png"), cv2.IMREAD_COLOR)
    assert bgr is not None, f"missing sample frame {index}"
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _face_mask(index: int) -> np.ndarray:
    mask = cv2.imread(str(CLIP / "masks" / f"{index:06d}.png"), cv2.IMREAD_GRAYSCALE)
    assert mask is not None, f"missing sample mask {index}"
    return (mask > 127).astype(np.float32)


def _reference(a8: np.ndarray, b8: np.ndarray, mask: np.ndarray) -> float:
    _, ssim_map = structural_similarity(a8.astype(np.float64) @ LUMA, b8.astype(np.float64) @ LUMA,
                                        gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                        data_range=255.0, K1=0.01, K2=0.03, full=True)
    return float(ssim_map[mask > 0.5].mean())


@pytest.mark.parametrize(("first", "second", "region"), [(0, 3, "face"), (10, 14, "face"), (0, 29, "face"),
                                                          (5, 20, "crop")])
def test_ssim_matches_scikit_image_on_sample_frames(first: int, second: int, region: str) -> None:
    a8, b8 = _frame(first), _frame(second)
    if region == "face":
        mask = _face_mask(first)
    else:  # a crop inside the face, scored whole: the window's border handling counts
        a8, b8 = a8[90:170, 110:180].copy(), b8[90:170, 110:180].copy()
        mask = np.ones(a8.shape[:2], np.float32)
    assert 0.05 < mask.mean() <= 1.0
    ours = image.ssim(srgb8_to_linear(a8), srgb8_to_linear(b8), mask)
    reference = _reference(a8, b8, mask)
    assert 0.2 < reference < 0.95  # a pair that is neither identical nor unrelated
    assert ours == pytest.approx(reference, abs=1e-5)
