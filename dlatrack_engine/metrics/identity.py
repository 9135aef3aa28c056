"""CSIM (Table 1): cosine similarity of face-recognition embeddings of the input frame and the render.

The paper uses ArcFace, whose weights are not in any package here. We use dlib's ResNet face-recognition
model (`dlib_face_recognition_resnet_model_v1`, 128-D, LFW 99.38 %; released by Davis King under CC0)
with dlib's 5-point landmark model for alignment (also CC0), both shipped in the PyPI package
`face-recognition-models` 0.3.0 and run by `dlib-bin`. (The 68-point model in the same package is trained
on iBUG 300-W, non-commercial, and is not used.) Absolute CSIM values are therefore not comparable to the
paper's ArcFace numbers; rankings between methods are.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np

from dlatrack_engine.colour import linear_to_srgb8

SHAPE_MODEL = "shape_predictor_5_face_landmarks.dat"
RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"


class IdentityModelMissing(RuntimeError):
    """dlib / face-recognition-models not installed."""


@functools.lru_cache(maxsize=1)
def _models() -> tuple:
    hint = "CSIM needs dlib-bin and face-recognition-models (pip install dlib-bin face-recognition-models)"
    try:
        import dlib
    except ImportError as exc:
        raise IdentityModelMissing(f"{hint}: {exc}") from exc
    # Locate the model files without importing face_recognition_models: its __init__ needs pkg_resources,
    # which current setuptools no longer ships.
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise IdentityModelMissing(f"{hint}: face_recognition_models is not installed")
    models = Path(next(iter(spec.submodule_search_locations))) / "models"
    files = {name: models / name for name in (SHAPE_MODEL, RECOGNITION_MODEL)}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        raise IdentityModelMissing(f"{hint}: model files missing: {missing}")
    return (dlib, dlib.shape_predictor(str(files[SHAPE_MODEL])),
            dlib.face_recognition_model_v1(str(files[RECOGNITION_MODEL])))


def embedding(image_linear: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """128-D unit embedding of the face inside `box` = (left, top, right, bottom) pixels of a linear image."""
    dlib, predictor, recogniser = _models()
    image = np.ascontiguousarray(linear_to_srgb8(image_linear))
    rect = dlib.rectangle(*(int(v) for v in box))
    shape = predictor(image, rect)
    vector = np.asarray(recogniser.compute_face_descriptor(image, shape), dtype=np.float64)
    return vector / max(np.linalg.norm(vector), 1e-12)


def csim(render: np.ndarray, frame: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Cosine similarity of the two images' embeddings, both taken in the same face box."""
    return float(embedding(render, box) @ embedding(frame, box))


def landmark_box(points: np.ndarray, width: int, height: int, margin: float = 0.1) -> tuple[int, int, int, int]:
    """Face box around 68 landmarks with a relative margin, clipped to the image."""
    lo, hi = points.min(0), points.max(0)
    pad = (hi - lo) * margin
    left, top = np.maximum(lo - pad, 0)
    right, bottom = np.minimum(hi + pad, [width - 1, height - 1])
    return int(left), int(top), int(right), int(bottom)
