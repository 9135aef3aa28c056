"""Drawing the preview's panels: labels, landmarks, a heat-map colour scale and the mosaic (uint8 sRGB
images [H, W, 3], row 0 = top). No torch here: the renders arrive as arrays."""

from __future__ import annotations

import cv2
import numpy as np

DETECTED = (60, 220, 60)  # landmark colours, RGB: the detector's, green
MESH = (255, 70, 70)  # the tracked mesh's ℓ_i, red


def _text_scale(width: int) -> float:
    return max(0.3, width / 640.0)


def label(panel: np.ndarray, text: str) -> np.ndarray:
    """`text` on a dark band across the top of a copy of `panel`."""
    out = panel.copy()
    scale = _text_scale(out.shape[1])
    (_, h), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    band = h + base + 6
    out[:band] = (out[:band] * 0.35).astype(np.uint8)
    cv2.putText(out, text, (4, h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def text_lines(width: int, height: int, lines: list[str]) -> np.ndarray:
    """A dark panel holding `lines` (the frame's numbers and the legend)."""
    out = np.full((height, width, 3), 24, np.uint8)
    scale = _text_scale(width)
    step = int(cv2.getTextSize("Ag", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][1] * 1.9)
    for row, line in enumerate(lines):
        cv2.putText(out, line, (6, step * (row + 1)), cv2.FONT_HERSHEY_SIMPLEX, scale, (230, 230, 230), 1,
                    cv2.LINE_AA)
    return out


def draw_landmarks(panel: np.ndarray, detected: np.ndarray | None, mesh: np.ndarray) -> np.ndarray:
    """Detected [68, 2] (None: no face found) and mesh [68, 2] landmarks, in pixels, as dots on a copy."""
    out = panel.copy()
    radius = max(1, round(out.shape[1] / 256))
    for points, colour in ((detected, DETECTED), (mesh, MESH)):
        if points is None:
            continue
        for x, y in np.round(points).astype(int):
            cv2.circle(out, (int(x), int(y)), radius, colour, -1, cv2.LINE_AA)
    return out


def heat_colours(values: np.ndarray, vmax: float) -> np.ndarray:
    """Values [...] in [0, vmax] -> inferno colours [..., 3] uint8 RGB."""
    levels = np.clip(np.nan_to_num(values) / max(vmax, 1e-9) * 255.0, 0, 255).astype(np.uint8)
    flat = cv2.applyColorMap(levels.reshape(-1, 1), cv2.COLORMAP_INFERNO)[:, 0, ::-1]
    return flat.reshape(*values.shape, 3)


def mosaic(panels: list[np.ndarray], columns: int) -> np.ndarray:
    """Panels of one size in rows of `columns` (a short last row padded with black); H.264's 4:2:0 needs even
    sides, so an odd mosaic gets one black row / column more."""
    h, w = panels[0].shape[:2]
    rows = -(-len(panels) // columns)
    out = np.zeros((rows * h + (rows * h) % 2, columns * w + (columns * w) % 2, 3), np.uint8)
    for i, panel in enumerate(panels):
        r, c = divmod(i, columns)
        out[r * h:(r + 1) * h, c * w:(c + 1) * w] = panel
    return out


def fit_width(image: np.ndarray, max_width: int) -> np.ndarray:
    """`image` scaled down (INTER_AREA, even sides) to at most `max_width` pixels wide; unchanged if narrower."""
    h, w = image.shape[:2]
    if w <= max_width:
        return image
    size = (max_width - max_width % 2, max(2, round(h * max_width / w / 2) * 2))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
