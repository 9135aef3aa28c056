"""Which face is the subject when a frame shows several: the same person in every frame, said out loud.

A detector that returns one face picks by its own ranking, which can change from frame to frame, and a
second person in the shot was tracked silently. Here the subject is the largest face (by the area of its
landmarks' bounding box) where faces first appear, and in every later frame the face whose centre is
nearest to the subject's last centre, so a passer-by who comes closer does not take over. Frames with more
than one face are listed, so the job can warn (job log and the add-on).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Candidate = tuple[np.ndarray, np.ndarray]  # (points [68, 2] pixels, confidence [68])


def _box(points: np.ndarray) -> tuple[np.ndarray, float]:
    """(centre [2], area) of the points' bounding box."""
    low, high = points.min(axis=0), points.max(axis=0)
    return (low + high) / 2, float(np.prod(high - low))


@dataclass
class SubjectPicker:
    """Picks one candidate per frame, consistently; `multi_face_frames` lists frames with several faces."""

    multi_face_frames: list[int] = field(default_factory=list)
    _centre: np.ndarray | None = None

    def pick(self, index: int, candidates: list[Candidate]) -> Candidate | None:
        if not candidates:
            return None
        if len(candidates) > 1:
            self.multi_face_frames.append(index)
        boxes = [_box(np.asarray(points, np.float64)) for points, _ in candidates]
        if self._centre is None:
            chosen = max(range(len(candidates)), key=lambda i: boxes[i][1])
        else:
            chosen = min(range(len(candidates)), key=lambda i: float(np.linalg.norm(boxes[i][0] - self._centre)))
        self._centre = boxes[chosen][0]
        return candidates[chosen]

    def warning(self, source: str, total: int) -> str | None:
        """The job-log line when some frame showed more than one face, else None."""
        frames = self.multi_face_frames
        if not frames:
            return None
        listed = ", ".join(map(str, frames[:20])) + (" ..." if len(frames) > 20 else "")
        return (
            f"'{source}': more than one face in {len(frames)} of {total} frames ({listed}); tracking one person: "
            "the largest face where faces first appear, then the face nearest to it in each frame. Trim the "
            "video or crop it to the subject if that is the wrong person"
        )
