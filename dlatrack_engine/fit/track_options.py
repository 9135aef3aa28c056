"""A registration request: what to track and how (the job's fingerprint is made from it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.fit.video_lighting import LIGHTING_KINDS
from dlatrack_engine.wire.digest import request_digest


@dataclass
class TrackOptions:
    """What to track and how. `quality` picks the schedule preset ("fast" | "paper"); the other fields
    override parts of it or choose a baseline (lighting "SH"/"none", adapt False, pretrained_lighting False,
    steps "landmarks" = step 1 alone)."""

    key_frames: int = 48  # K; 0 = all frames; capped by the frame count
    quality: str = "fast"
    start: int = 0
    stop: int | None = None
    stride: int = 1
    lighting: str = "G"
    adapt: bool = True
    pretrained_lighting: bool = True
    steps: str = "full"  # "full" | "landmarks"
    detector: str = "auto"
    landmark_weights_dir: str | None = None
    calibrated_landmarks: bool = True  # the detector's own ℓ_i when the avatar has one (train/landmark_calibration)
    focal: float | None = None  # pixels; None: clip calibration or a phone-like default
    flow_weight: float | None = None  # λ_flow override (paper 3.0)
    batch_size: int | None = None  # step-3 frames per batch override
    write_textures: bool = True
    write_overlays: bool = True
    write_preview: bool = True  # preview.mp4 (report/preview.py) once every frame is tracked
    lighting_from: str | None = None  # a lighting folder (or job folder) to reuse: step 2 is skipped (issue 27)
    time_varying_lighting: bool = True  # per-frame l_t where the lighting changes (issue 18); False: one l

    def __post_init__(self) -> None:
        if self.quality not in ("fast", "paper"):
            raise ValueError(f"quality must be 'fast' or 'paper', got {self.quality!r}")
        if self.lighting not in LIGHTING_KINDS:
            raise ValueError(f"lighting must be one of {LIGHTING_KINDS}, got {self.lighting!r}")
        if self.steps not in ("full", "landmarks"):
            raise ValueError(f"steps must be 'full' or 'landmarks', got {self.steps!r}")
        if self.stride < 1 or self.start < 0:
            raise ValueError(f"frame range: start {self.start} must be >= 0 and stride {self.stride} >= 1")

    def schedule(self) -> Schedule:
        schedule = Schedule.preset(self.quality)
        schedule.step2.key_frames = self.key_frames
        if self.flow_weight is not None:
            schedule.step3.flow_weight = self.flow_weight
        if self.batch_size is not None:
            schedule.step3.batch_size = self.batch_size
        return schedule

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def fingerprint(self, video: Path, avatar_name: str) -> str:
        """What the results depend on (not the output switches): a rerun with another is refused."""
        switches = ("write_textures", "write_overlays", "write_preview")
        keys = {k: v for k, v in self.to_dict().items() if k not in switches}
        return request_digest({"video": str(Path(video).resolve()), "avatar": avatar_name, **keys})
