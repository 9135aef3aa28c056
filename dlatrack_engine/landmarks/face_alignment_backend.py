"""The detector the user asked for: `face-alignment` (Bulat & Tzimiropoulos, 2D-FAN, 68 iBUG points).

Its weights cannot be downloaded here, so they are loaded from a configured folder (option
`weights_dir` or env `DLATRACK_FACE_ALIGNMENT_DIR`) or the torch hub cache (`torch.hub.get_dir()/
checkpoints`), where face-alignment itself caches them. Without them this raises a LandmarkError saying
exactly which files were looked for where, instead of letting face-alignment try the network.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from dlatrack_engine.landmarks.base import LandmarkError

log = logging.getLogger(__name__)

# face-alignment >= 1.4 file names: the 2D-FAN landmark network (TorchScript zip) and the S3FD face detector.
REQUIRED_PATTERNS = ("2DFAN4-*.zip", "s3fd-*.pth")
ENV_DIR = "DLATRACK_FACE_ALIGNMENT_DIR"


def candidate_dirs(weights_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Folders searched for the weights, in order."""
    import torch

    dirs = []
    if weights_dir:
        dirs.append(Path(weights_dir))
    if os.environ.get(ENV_DIR):
        dirs.append(Path(os.environ[ENV_DIR]))
    dirs.append(Path(torch.hub.get_dir()) / "checkpoints")
    return dirs


def find_weights(weights_dir: str | os.PathLike[str] | None = None) -> Path:
    """The first folder holding every required file; LandmarkError naming the files and folders otherwise."""
    searched = candidate_dirs(weights_dir)
    for folder in searched:
        if all(any(folder.glob(pattern)) for pattern in REQUIRED_PATTERNS):
            return folder
    raise LandmarkError(
        "face-alignment weights not found: looked for " + " and ".join(REQUIRED_PATTERNS) + " in "
        + ", ".join(f"'{d}'" for d in searched)
        + f". Copy them there (or set {ENV_DIR}), or use the packaged fallback detector ('mediapipe')."
    )


class FaceAlignmentDetector:
    """2D-FAN landmarks via the face-alignment package, loaded from local files only."""

    name = "face-alignment"

    def __init__(self, device: str = "cpu", weights_dir: str | os.PathLike[str] | None = None) -> None:
        folder = find_weights(weights_dir)
        try:
            import face_alignment
            import torch
        except ImportError as exc:
            raise LandmarkError(f"weights found in '{folder}' but the face-alignment package is not "
                                f"installed (pip install face-alignment): {exc}") from exc
        hub_dir = folder.parent if folder.name == "checkpoints" else self._hub_with(folder)
        previous = torch.hub.get_dir()
        torch.hub.set_dir(str(hub_dir))  # face-alignment resolves its URLs to <hub>/checkpoints/<file>
        try:
            self._fa = face_alignment.FaceAlignment(face_alignment.LandmarksType.TWO_D, device=str(device),
                                                    face_detector="sfd")
        finally:
            torch.hub.set_dir(previous)
        log.info("face-alignment loaded from '%s'", folder)

    @staticmethod
    def _hub_with(folder: Path) -> Path:
        hub = Path(tempfile.mkdtemp(prefix="dlatrack-hub-"))
        (hub / "checkpoints").symlink_to(folder.resolve(), target_is_directory=True)
        return hub

    def detect_all(self, image: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """image [H, W, 3] uint8 sRGB -> [(points [68, 2], confidence [68])] for every face found."""
        result = self._fa.get_landmarks_from_image(image, return_landmark_score=True)
        if result is None:
            return []
        if isinstance(result, tuple):  # (landmarks, scores, boxes) when scores are asked for
            points, scores = result[0], (result[1] if len(result) > 1 else None)
        else:
            points, scores = result, None
        faces = []
        for k, face in enumerate(points or []):
            # face-alignment gives pixel-centre-indexed coordinates; conventions.md puts centres at +0.5.
            marks = np.asarray(face, np.float32)[:, :2] + 0.5
            conf = np.ones(68, np.float32) if scores is None else np.clip(np.asarray(scores[k], np.float32), 0, 1)
            faces.append((marks, conf))
        return faces

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """image [H, W, 3] uint8 sRGB -> (points [68, 2], confidence [68]) of the first face, or None."""
        faces = self.detect_all(image)
        return faces[0] if faces else None
