"""A second look at frames where the detector finds no face: the same frame at a normalised exposure.

Face detectors are trained on well-exposed photographs. Under one dim lamp (the sample set-up
`dim_side_lamp`, whose brightest pixels reach a linear luminance of about 0.18) MediaPipe finds the face in
11 of 24 frames; the same frames scaled so that their 99th-percentile luminance is 0.5 give 15 of 24
(bench/RESULTS.md, "Landmarks under dim light"). Only frames that failed as they are get the second look,
so the landmarks of every frame the detector already handled stay exactly what they were.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np

from dlatrack_engine.colour import linear_to_srgb8

HIGHLIGHT_PERCENTILE = 99.0
TARGET_HIGHLIGHT = 0.5  # linear luminance the frame's highlights are scaled to
MAX_GAIN = 16.0  # 4 stops: beyond that a frame is noise, not a face
_REC709_LUMA = np.array([0.2126, 0.7152, 0.0722], np.float32)


def exposure_gain(frame_linear: np.ndarray) -> float:
    """The gain that brings the frame's highlights to TARGET_HIGHLIGHT (1 for frames already that bright)."""
    highlight = float(np.percentile(frame_linear @ _REC709_LUMA, HIGHLIGHT_PERCENTILE))
    return float(np.clip(TARGET_HIGHLIGHT / max(highlight, 1e-6), 1.0, MAX_GAIN))


def local_contrast(image_srgb8: np.ndarray) -> np.ndarray:
    """CLAHE on the lightness channel: lifts a face half in shadow without touching its colours."""
    lab = cv2.cvtColor(image_srgb8, cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8)).apply(lab[..., 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def second_looks(frame_linear: np.ndarray) -> Iterator[np.ndarray]:
    """uint8 sRGB views of a linear frame to retry detection on, in order: exposure-normalised, then with
    local contrast; the first is skipped for a frame already that bright (it would be the same image)."""
    gain = exposure_gain(frame_linear)
    brightened = linear_to_srgb8(frame_linear * gain)
    if gain > 1.0:
        yield brightened
    yield local_contrast(brightened)
