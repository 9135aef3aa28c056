"""Where and with what a registration computes, kept apart from the request (`pipeline.TrackOptions`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Runtime:
    """The results do not depend on these settings, so they are neither in the manifest nor in the job's
    fingerprint, and a client cannot send them."""

    device: str | None = None  # must be the avatar's; None: the avatar's device
    landmark_detector: Any = field(default=None, repr=False)  # a detector instance (tests, tools)
