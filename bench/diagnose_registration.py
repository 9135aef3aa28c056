"""Ground-truth diagnostics of registration on a clip with `gt.npz`: is the truth a fixed point of step 3,
which way does Eq. 7 pull along the viewing ray, and how is a job's error split (rigid / depth / lateral)?

    python -m bench.diagnose_registration CLIP_DIR [--job JOB_DIR [--job-only]] [--frames N] [--quality fast]
        [--sweep-mm 10] [--out cache/diagnose/CLIP]

1. The ground-truth state: the true head pose, and z fitted to the true vertices through the DAM's
   geometry branch (the code a perfect tracker would find).
2. Lighting adapted by Algorithm 1 at that state (key-frame poses fixed at the truth).
3. Step 3 started at the truth with that lighting: its drift is what the objective does to a perfect start.
4. The per-frame step-3 loss and its autograd slope along the viewing ray, at the truth ± `sweep-mm`.
With `--job`, the job's error split after step 1 (init.npz), step 2 (key_poses.npz, its key frames) and
step 3 is printed too; `--job-only` stops there.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from dlatrack_engine.fit.ground_truth import GT_TRACK_FIELDS, load_ground_truth_clip, track_arrays
from dlatrack_engine.fit.params import FrameParams
from dlatrack_engine.fit.scene import FaceScene
from dlatrack_engine.fit.schedule import Schedule
from dlatrack_engine.fit.step2 import adapt_lighting
from dlatrack_engine.fit.step3 import track_batch
from dlatrack_engine.fit.video_lighting import VideoLighting
from dlatrack_engine.metrics.geometry import geometry_errors

log = logging.getLogger("diagnose_registration")
SHOWN = ("vertex_mm", "aligned_mm", "depth_bias_mm", "depth_abs_mm", "lateral_mm", "reprojection_px",
         "rotation_deg", "jitter_mm")


def report(name: str, errors: dict[str, float]) -> dict[str, float]:
    log.info("%-28s %s", name, "  ".join(f"{k} {errors[k]:.2f}" for k in SHOWN if k in errors))
    return errors


def depth_sweep(scene: FaceScene, frames: torch.Tensor, params: FrameParams, lighting: VideoLighting,
                schedule: Schedule, offsets_mm: np.ndarray) -> dict[str, list]:
    """Step-3 loss (λ_flow = 0) per frame with the head moved along its viewing ray by each offset, and the
    autograd derivative d loss / d depth at each offset (mean over frames)."""
    from dlatrack_engine.fit.image_term import image_term

    losses, slopes = [], []
    ray = params.t / params.t.norm(dim=-1, keepdim=True)
    for offset in offsets_mm:
        shift = torch.zeros(len(params), 1, requires_grad=True)
        moved = FrameParams(params.r, params.t + ray * (float(offset) / 1000.0 + shift), params.z)
        loss, _ = image_term(scene, frames, moved, lighting, schedule.laplacian_weight)
        loss.sum().backward()
        losses.append(loss.detach().numpy().tolist())
        slopes.append(float(shift.grad.mean()) / 1000.0)  # per mm
    return {"offsets_mm": offsets_mm.tolist(), "loss": losses, "slope_per_mm": slopes}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("clip")
    p.add_argument("--avatar", default=str(Path(__file__).resolve().parents[1] / "sample_scenes" / "avatar"))
    p.add_argument("--job", default=None)
    p.add_argument("--job-only", action="store_true", help="with --job: only the job's per-step error split")
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--quality", default="fast")
    p.add_argument("--sweep-mm", type=float, default=10.0)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    from dlatrack_engine.avatar.runtime import Avatar

    avatar = Avatar.load(args.avatar, "cpu")
    clip_dir = Path(args.clip)
    schedule = Schedule.preset(args.quality)
    rows = None if args.frames is None else list(range(args.frames))
    data = load_ground_truth_clip(clip_dir, avatar, schedule.work_size, rows)
    scene, frames, gt_sel, truth = data.scene, data.frames, data.gt, data.truth
    results: dict[str, object] = {}
    results["truth (z fitted)"] = report("truth (z fitted)", geometry_errors(track_arrays(scene, truth), gt_sel))
    if args.job:
        from dlatrack_engine.fit.output import load_params
        from dlatrack_engine.wire.jobfolder import JobFolder

        frames_used = list(range(len(truth)))  # the job's first frames, as the clip's (start 0, stride 1)
        init, _ = load_params(Path(args.job) / "init.npz", torch.device("cpu"))
        results["job step 1"] = report("job step 1", geometry_errors(
            track_arrays(scene, init.select(frames_used)), gt_sel))
        if (Path(args.job) / "key_poses.npz").exists():  # step 2's refined p_k, on the key frames it chose
            refined, data = load_params(Path(args.job) / "key_poses.npz", torch.device("cpu"))
            keys = [i for i, row in enumerate(data["rows"].tolist()) if row in set(frames_used)]
            rows = [int(data["rows"][i]) for i in keys]
            gt_keys = {k: v[rows] for k, v in gt_sel.items() if k != "K"} | {"K": gt_sel["K"]}
            results["job step 2 (p_k)"] = report("job step 2 (p_k)", geometry_errors(
                track_arrays(scene, refined.select(keys)), gt_keys))
        track = JobFolder(args.job).read_track(frames_used)
        results["job step 3"] = report("job step 3", geometry_errors(
            {k: track[k] for k in GT_TRACK_FIELDS}, gt_sel))
        if args.job_only:
            write_results(args, clip_dir, results)
            return
    lighting = VideoLighting("G", avatar, scene.renderer)
    start = time.monotonic()
    adapt_lighting(scene, frames, truth, lighting, schedule)
    log.info("lighting adapted at the truth in %.0f s", time.monotonic() - start)
    tracked, _ = track_batch(scene, frames, truth, lighting, schedule)
    results["step 3 from the truth"] = report("step 3 from the truth", geometry_errors(track_arrays(scene, tracked),
                                                                                      gt_sel))
    offsets = np.linspace(-args.sweep_mm, args.sweep_mm, 5)
    sweep = depth_sweep(scene, frames, truth, lighting, schedule, offsets)
    for off, loss, slope in zip(offsets, sweep["loss"], sweep["slope_per_mm"], strict=True):
        log.info("depth %+5.1f mm: loss %.4f  slope %+.5f /mm", off, float(np.mean(loss)), slope)
    results["depth_sweep"] = sweep
    write_results(args, clip_dir, results)


def write_results(args: argparse.Namespace, clip_dir: Path, results: dict) -> None:
    out = Path(args.out or f"cache/diagnose/{clip_dir.name}")
    out.mkdir(parents=True, exist_ok=True)
    (out / "diagnosis.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
