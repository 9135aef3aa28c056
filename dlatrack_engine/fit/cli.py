"""`dlatrack track VIDEO --avatar A --out DIR [--lighting-from LIGHTING]`: the registration pipeline from the
command line, with a tqdm progress bar per stage. The server calls the same `track_video`."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path

from tqdm import tqdm

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("track", help="track a video with an avatar (steps 1-3 of the paper)",
                              description=__doc__)
    add_request_arguments(p)
    p.add_argument("--landmarks-only", action="store_true", help="baseline: step 1 alone (no step 3)")
    p.add_argument("--flow-weight", type=float, default=None, help="λ_flow (paper: 3.0)")
    p.add_argument("--no-textures", action="store_true", help="skip the per-frame texture PNGs")
    p.add_argument("--no-overlays", action="store_true", help="skip the overlay PNGs")
    p.add_argument("--no-preview", action="store_true",
                   help="skip preview.mp4 (input, tracked mesh, relit avatar, novel view side by side)")
    p.add_argument("--lighting-from", default=None, metavar="DIR",
                   help="reuse the lighting adapted by `dlatrack adapt` (its folder or any job folder): skips step 2")
    p.set_defaults(func=run)


def add_request_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments `track` and `adapt` share: input, avatar, output, steps 1-2's settings."""
    p.add_argument("video", help="video file (mp4/mov/avi/...) or folder of PNG/JPG frames")
    p.add_argument("--avatar", required=True, help="avatar package (folder or .zip)")
    p.add_argument("--out", required=True, help="job folder (rerun with the same folder to resume)")
    p.add_argument("--quality", choices=("fast", "paper"), default="fast",
                   help="schedule preset: 'fast' (minutes on a CPU) or the paper's full schedule")
    p.add_argument("--key-frames", "-K", type=int, default=48, help="K for lighting adaptation; 0 = all frames")
    p.add_argument("--start", type=int, default=0, help="first frame")
    p.add_argument("--stop", type=int, default=None, help="frame to stop before")
    p.add_argument("--stride", type=int, default=1, help="take every n-th frame")
    p.add_argument("--lighting", choices=("G", "SH", "none"), default="G",
                   help="lighting model: the avatar's G (paper), SH (Ours-SH baseline) or none")
    p.add_argument("--no-adapt", action="store_true", help="ablation: fit only the light code, keep φ")
    p.add_argument("--scratch-lighting", action="store_true",
                   help="ablation: G from random weights (no light-stage pre-training)")
    p.add_argument("--device", default=None, help="cpu | cuda | cuda:N (default: CUDA when present)")
    p.add_argument("--detector", choices=("auto", "face-alignment", "mediapipe"), default="auto")
    p.add_argument("--landmark-weights", default=None, help="folder with face-alignment's weight files")
    p.add_argument("--default-landmarks", action="store_true",
                   help="step 1 ties landmarks to the topology's default ℓ_i even when the avatar has ones "
                        "calibrated for the detector (`dlatrack train landmarks`)")
    p.add_argument("--focal", type=float, default=None, help="focal length in pixels (default: clip calibration)")
    p.add_argument("--static-lighting", action="store_true",
                   help="the paper's one lighting for the whole video (default: per-frame lighting where it changes)")


def track_options(args: argparse.Namespace):
    """TrackOptions from the parsed arguments (`adapt` has no step-3 arguments: their defaults)."""
    from dlatrack_engine.fit.pipeline import TrackOptions

    lighting_from = getattr(args, "lighting_from", None)
    return TrackOptions(
        key_frames=args.key_frames, quality=args.quality, start=args.start, stop=args.stop, stride=args.stride,
        lighting=args.lighting, adapt=not args.no_adapt, pretrained_lighting=not args.scratch_lighting,
        steps="landmarks" if getattr(args, "landmarks_only", False) else "full",
        detector=args.detector, landmark_weights_dir=args.landmark_weights,
        calibrated_landmarks=not args.default_landmarks, focal=args.focal,
        flow_weight=getattr(args, "flow_weight", None), write_textures=not getattr(args, "no_textures", False),
        write_overlays=not getattr(args, "no_overlays", False),
        write_preview=not getattr(args, "no_preview", False),
        lighting_from=None if lighting_from is None else str(Path(lighting_from).resolve()),
        time_varying_lighting=not getattr(args, "static_lighting", False),
    )


def run_with_progress(function, args: argparse.Namespace):
    """Run a pipeline function (`track_video`, `adapt_video_lighting`) with a tqdm bar per stage; Ctrl-C finishes
    the current frame and keeps the folder resumable."""
    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.device import pick_device
    from dlatrack_engine.fit.pipeline import ProgressEvent

    device = pick_device(args.device)
    options = track_options(args)
    avatar = Avatar.load(args.avatar, device)
    bars: dict[str, tqdm] = {}

    def progress(event: ProgressEvent) -> None:
        # One bar per stage; step 3's "track" (iterations of a batch) and "write" (frames done) share a bar.
        stage = "track" if event.stage == "write" else event.stage
        bar = bars.get(stage)
        if bar is None:
            for other in bars.values():
                other.close()
            unit = "frame" if stage in ("landmarks", "track", "preview") else "it"
            bar = bars[stage] = tqdm(total=event.total, desc=stage, unit=unit, dynamic_ncols=True)
        if event.stage != "track":
            bar.n = min(event.frame, event.total)
        if event.loss is not None:
            bar.set_postfix_str(f"loss {event.loss:.4g} {event.message}".strip(), refresh=False)
        bar.refresh()

    cancel = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: cancel.set())
    try:
        return function(Path(args.video), avatar, Path(args.out), options, progress, cancel)
    finally:
        signal.signal(signal.SIGINT, previous)
        for bar in bars.values():
            bar.close()


def run(args: argparse.Namespace) -> int:
    from dlatrack_engine.fit.pipeline import track_video

    summary = run_with_progress(track_video, args)
    if summary.cancelled:
        tqdm.write(f"interrupted: {summary.computed_frames} frames written to {summary.out_dir}; rerun to resume")
        return 130
    preview = Path(args.out) / "preview.mp4"
    if not args.no_preview and preview.exists():
        tqdm.write(f"preview: {preview}")
    tqdm.write(f"tracked {summary.frames} frames ({summary.computed_frames} computed, {summary.skipped_frames} "
               f"resumed) -> {summary.out_dir}; " + ", ".join(f"{k} {v:.0f}s" for k, v in summary.seconds.items()))
    return 0
