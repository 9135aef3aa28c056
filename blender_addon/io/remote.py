"""Track Video with an engine on another machine: what goes up, and that it is never a laptop path.

The engine gets the avatar package and the video as uploads (`upload.py`, identified by content, so only
what it lacks is sent), the camera calibration found beside the video (`calibration.py`), and the track
options; it chooses its own job folder. Results come back over the socket into a laptop folder
(`mirror.py`), whose manifest points at the laptop's video.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .calibration import Calibration, find_calibration
from .upload import Progress, package_archive, upload_file

log = logging.getLogger(__name__)


def ensure_avatar(client: Any, package: str | Path) -> str:
    """Upload the avatar package unless the engine has it (same content) and load it -> avatar_id."""
    with tempfile.TemporaryDirectory(prefix="dlatrack-avatar-") as folder:
        upload_id = upload_file(client, "avatar", package_archive(package, folder), name="avatar.zip")
    return client.load_avatar(upload=upload_id)


def submit_track(client: Any, video: str | Path, avatar_id: str, options: Mapping[str, Any],
                 on_progress: Progress | None = None, cancel: threading.Event | None = None,
                 calibration: Calibration | None = None) -> tuple[dict[str, Any], Calibration]:  # fmt: skip
    """Upload the video (resuming an interrupted upload) with its calibration and queue the job ->
    (its record {job_id, kind, folder, state}, the calibration sent; `assumed` when the engine will use its
    default focal length)."""
    if calibration is None:
        calibration = find_calibration(video, options)
    if calibration.assumed:
        log.warning("%s", calibration.warning(str(video)))
    upload_id = upload_file(client, "video", video, on_progress=on_progress, cancel=cancel)
    sent = {"K": calibration.K} if calibration.K is not None else None
    record = client.track_job(None, avatar_id, options=dict(options), video_upload=upload_id, calibration=sent)
    return record, calibration
