"""Fallback detector whose model ships inside a PyPI package: MediaPipe Face Mesh (mediapipe 0.10.14,
Apache-2.0; the legacy `solutions.face_mesh` API with its bundled face-detection and 468-point
face-landmark .tflite models). Its 468 points are mapped to iBUG-68 by a fixed index table (below).

Note for installs: mediapipe 0.10.14 declares jax, opencv-contrib-python and sounddevice as requirements,
none of which face mesh uses; opencv-contrib would clash with opencv-python-headless, so it is installed
with `--no-deps` plus absl-py, attrs, flatbuffers, protobuf<5 and matplotlib.
"""

from __future__ import annotations

import logging

import numpy as np

from dlatrack_engine.landmarks.base import LandmarkError

log = logging.getLogger(__name__)

# iBUG-68 index -> MediaPipe face-mesh vertex. Subject's right = image left for a frontal face, matching
# iBUG (point 0 is the jaw on the image's left). Each group in iBUG order.
MEDIAPIPE_TO_IBUG68 = np.concatenate([
    [127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356],  # jaw 0-16
    [70, 63, 105, 66, 107],  # right brow 17-21
    [336, 296, 334, 293, 300],  # left brow 22-26
    [168, 197, 5, 4],  # nose bridge 27-30
    [75, 97, 2, 326, 305],  # nostrils 31-35
    [33, 160, 158, 133, 153, 144],  # right eye 36-41
    [362, 385, 387, 263, 373, 380],  # left eye 42-47
    [61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181],  # outer lips 48-59
    [78, 82, 13, 312, 308, 317, 14, 87],  # inner lips 60-67
]).astype(np.int64)
assert MEDIAPIPE_TO_IBUG68.shape == (68,)
MAX_FACES = 4


class MediaPipeDetector:
    """iBUG-68 landmarks from MediaPipe Face Mesh.

    `static=True` (default) detects the face afresh in every frame. MediaPipe's tracking mode is faster but
    drifts: on the sample clip `sun_sky` (head turning into a hard shadow) it slid up to 41 px off the face
    over ten frames, where per-frame detection stayed within 6-8 px of the ground truth.
    """

    name = "mediapipe-facemesh"

    def __init__(self, min_confidence: float = 0.5, static: bool = True) -> None:
        try:
            import mediapipe as mp
        except ImportError as exc:
            raise LandmarkError(
                "landmark detector 'mediapipe' needs the mediapipe package (pip install --no-deps "
                f"mediapipe==0.10.14 absl-py attrs flatbuffers 'protobuf<5' matplotlib): {exc}"
            ) from exc
        self._mesh = mp.solutions.face_mesh.FaceMesh(  # several faces: detect_clip picks the subject
            static_image_mode=static, max_num_faces=MAX_FACES, refine_landmarks=False,
            min_detection_confidence=min_confidence, min_tracking_confidence=min_confidence,
        )

    def detect_all(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """image [H, W, 3] uint8 sRGB -> [(points [68, 2] pixels, confidence [68])] for every face found."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"MediaPipeDetector.detect: expected uint8 [H, W, 3], got {image.dtype} {image.shape}")
        result = self._mesh.process(np.ascontiguousarray(image))
        h, w = image.shape[:2]
        faces = []
        for face in result.multi_face_landmarks or []:
            # MediaPipe's normalised coordinates span the image edges (0 = left/top edge, 1 = right/bottom).
            all_points = np.array([(p.x * w, p.y * h) for p in face.landmark], dtype=np.float32)
            faces.append((all_points[MEDIAPIPE_TO_IBUG68], np.ones(68, np.float32)))
        return faces

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """image [H, W, 3] uint8 sRGB -> (points [68, 2] pixels, confidence [68]) of the first face, or None."""
        faces = self.detect_all(image)
        return faces[0] if faces else None

    def close(self) -> None:
        self._mesh.close()
