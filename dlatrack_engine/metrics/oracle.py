"""The appearance ceiling of a tracked clip (issue 17): the avatar rendered at the ground-truth state (true
pose, z fitted to the true mesh: fit/ground_truth.py) with the lighting adapted *there* (Algorithm 1 with the
key-frame poses held at the truth), scored on the same frames, masks and metrics as the tracked result
(`evaluate.score_renders`). Ceiling − tracked is what registration loses; what the ceiling itself misses
is the avatar's appearance (DAM texture, G), which no tracker can recover.

Step 2 costs minutes of CPU, so the result is kept in the job folder (`oracle.json`, in its file ledger)
under a key of content hashes: the avatar's DAM and G, the frames, masks and truth scored, the camera, the
schedule and the lighting options. Any change to one of them recomputes it; otherwise it is read back.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlatrack_engine.fit.ground_truth import GT_TRACK_FIELDS, truth_params
from dlatrack_engine.fit.keyframes import select_key_frames
from dlatrack_engine.fit.lighting_store import avatar_identity, model_identity
from dlatrack_engine.fit.scene import FaceScene, lighting_rotation
from dlatrack_engine.fit.schedule import Schedule, Step1Schedule, Step2Schedule, Step3Schedule
from dlatrack_engine.fit.step2 import adapt_lighting
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.metrics.evaluate import score_renders
from dlatrack_engine.report.job import LoadedJob
from dlatrack_engine.video import read_clip
from dlatrack_engine.wire.jobfolder import JobFolder, JobFolderError
from dlatrack_engine.wire.manifest import Manifest

log = logging.getLogger(__name__)
ORACLE_FILE = "oracle.json"
FORMAT = 1  # bump when the computation changes: older caches are then recomputed
METRICS = ("l2", "ssim", "psnr")


@dataclass
class Oracle:
    """The ceiling's mean and per-frame metrics (rows = the job's tracked frames) and how it was made."""

    means: dict[str, float]  # l2, ssim, psnr
    per_frame: dict[str, list[float]]
    key_frames: list[int]  # source frame indices the lighting was adapted on
    seconds: float  # compute time of the run that made it
    cached: bool  # read back from oracle.json
    key: str  # the content hash it is stored under

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def schedule_from_dict(stored: dict) -> Schedule:
    """The Schedule a manifest's `schedule` field (Schedule.to_dict) describes."""
    steps = {"step1": Step1Schedule, "step2": Step2Schedule, "step3": Step3Schedule}
    return Schedule(**{k: steps[k](**v) if k in steps else v for k, v in stored.items()})


def job_schedule(manifest: Manifest) -> Schedule:
    """The schedule the job ran with; a manifest without one gets its quality preset and K."""
    if manifest.schedule is not None:
        return schedule_from_dict(manifest.schedule)
    options = manifest.options
    schedule = Schedule.preset(options.get("quality", "fast"))
    schedule.step2.key_frames = int(options.get("key_frames", schedule.step2.key_frames))
    return schedule


def _lighting_options(manifest: Manifest) -> dict:
    options = manifest.options
    return {"kind": options.get("lighting", "G"), "adapt": bool(options.get("adapt", True)),
            "pretrained": bool(options.get("pretrained_lighting", True))}


def oracle_key(job: LoadedJob, avatar, schedule: Schedule) -> str:
    """sha256 of everything the ceiling depends on (see the module docstring)."""
    lighting = _lighting_options(job.manifest)
    meta = {"format": FORMAT, "avatar": avatar_identity(avatar), "model": model_identity(avatar, lighting["kind"]),
            "frames": job.indices, "K": job.manifest.K, "schedule": schedule.to_dict(), "lighting": lighting}
    digest = hashlib.sha256(json.dumps(meta, sort_keys=True, default=str).encode())
    assert job.gt is not None
    for array in (job.frames, *job.masks, *(job.gt[k] for k in GT_TRACK_FIELDS)):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def ceiling_state(job: LoadedJob, avatar, schedule: Schedule):
    """(truth params, lighting adapted at the truth or None, key source frames): step 2 at the schedule's
    working size on the job's frames, as the pipeline runs it, with p_k fixed at the true poses."""
    assert job.gt is not None
    options, lighting_options = job.manifest.options, _lighting_options(job.manifest)
    clip = read_clip(Path(job.manifest.video), options.get("start", 0), options.get("stop"),
                     options.get("stride", 1), work_size=schedule.work_size)
    rows = [clip.indices.index(i) for i in job.indices]
    work_K = np.diag([clip.scale, clip.scale, 1.0]) @ np.asarray(job.manifest.K, np.float64)
    scene = FaceScene(avatar, torch.as_tensor(work_K), *clip.size)
    truth = truth_params(scene, job.gt["head_R"], job.gt["head_t"], job.gt["vertices"])
    keys = select_key_frames(lighting_rotation(truth.rotation()).cpu().numpy(), schedule.step2.key_frames)
    if lighting_options["kind"] == "none":
        return truth, None, []
    lighting = VideoLighting(lighting_options["kind"], avatar, scene.renderer,
                             pretrained=lighting_options["pretrained"])
    at_truth = copy.deepcopy(schedule)
    at_truth.step2.pose_lr_scale = 0.0  # Algorithm 1 with the key-frame poses held at the truth
    frames = torch.from_numpy(np.ascontiguousarray(clip.frames[rows]))
    torch.manual_seed(0)
    adapt_lighting(scene, frames[keys], truth.select(keys), lighting, at_truth, adapt_network=lighting_options["adapt"])
    lighting.renderer = job.scene.renderer  # scored at the clip's own size (SH reads normals through it)
    return truth, lighting, [job.indices[k] for k in keys]


def _read_cache(folder: JobFolder, key: str) -> Oracle | None:
    path = folder.root / ORACLE_FILE
    try:
        document = json.loads(folder.read_file(path))
    except FileNotFoundError:
        return None
    except (JobFolderError, ValueError) as exc:
        log.warning("%s: unusable (%s); recomputing the ceiling", path, exc)
        return None
    if document.get("key") != key:
        log.info("%s: made for other inputs; recomputing the ceiling", path)
        return None
    return Oracle(**{**document, "cached": True})


def job_oracle(job: LoadedJob, avatar, batch: int = 8, use_cache: bool = True) -> Oracle:
    """The ceiling of a loaded job with ground truth (job.gt), from oracle.json when its key matches."""
    if job.gt is None:
        raise ValueError(f"{job.folder.root}: the clip has no ground truth (gt.npz); no appearance ceiling")
    schedule = job_schedule(job.manifest)
    key = oracle_key(job, avatar, schedule)
    if use_cache and (cached := _read_cache(job.folder, key)) is not None:
        return cached
    start = time.monotonic()
    truth, lighting, keys = ceiling_state(job, avatar, schedule)
    series, _ = score_renders(job, truth, lighting, csim=False, batch=batch)
    oracle = Oracle({k: float(np.mean(series[k])) for k in METRICS}, {k: series[k].tolist() for k in METRICS},
                    keys, time.monotonic() - start, False, key)
    job.folder.write_file(job.folder.root / ORACLE_FILE, (json.dumps(oracle.to_json(), indent=1) + "\n").encode())
    return oracle


def oracle_columns(oracle: Oracle, tracked: dict[str, float]) -> dict[str, float]:
    """The table's oracle cells: the ceiling, and the loss = ceiling − tracked (dB for PSNR; > 0 = lost)."""
    return {"oracle_psnr": oracle.means["psnr"], "oracle_ssim": oracle.means["ssim"], "oracle_l2": oracle.means["l2"],
            "psnr_loss": oracle.means["psnr"] - tracked["psnr"], "ssim_loss": oracle.means["ssim"] - tracked["ssim"]}
