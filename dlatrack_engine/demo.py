"""`dlatrack demo`: the main job on the bundled sample scene, end to end, the way an artist runs it.

It runs the headless Blender batch script (`blender_addon/batch.py`) in Blender's Python; that script starts
an engine process from this venv, tracks the bundled clip with the bundled avatar (landmark init, lighting
adaptation, tracking), writes shape-key animation and relit texture sequences into a .blend, and renders the
tracked frames with Cycles. Nothing here is special-cased for the demo: it is the same path as
`blender -b --python blender_addon/batch.py -- ...`.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import subprocess
import sys
from pathlib import Path

from dlatrack_engine.paths import REPO_ROOT, SAMPLE_SCENES, blender_command

log = logging.getLogger(__name__)

DEFAULT_CLIP = SAMPLE_SCENES / "clips" / "warm_key_cool_fill" / "video.mp4"
DEFAULT_AVATAR = SAMPLE_SCENES / "avatar"
BATCH_SCRIPT = REPO_ROOT / "blender_addon" / "batch.py"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="track the bundled sample clip and build a Blender scene from it")
    parser.add_argument("--video", type=Path, default=DEFAULT_CLIP, help="clip to track (default: bundled sample)")
    parser.add_argument("--avatar", type=Path, default=DEFAULT_AVATAR, help="avatar package (default: bundled)")
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "out" / "demo", help="output folder")
    parser.add_argument("--frames", default="0:0", help="START:COUNT video frames (COUNT 0: all)")
    parser.add_argument("--no-render", action="store_true", help="skip the Cycles render of the tracked frames")
    parser.add_argument("--preset", default="FAST", choices=["FAST", "PAPER"], help="quality preset")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for path, what in ((args.video, "video"), (args.avatar, "avatar package"), (BATCH_SCRIPT, "batch script")):
        if not path.exists():
            log.error("demo: the %s '%s' does not exist", what, path)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    keep_previous_job(args.out / "job")
    batch_args = [
        "--video", str(args.video),
        "--avatar", str(args.avatar),
        "--out", str(args.out / "scene.blend"),
        "--job-dir", str(args.out / "job"),
        "--frames", args.frames,
        "--preset", args.preset,
        "--engine-python", sys.executable,
    ]  # fmt: skip
    if not args.no_render:
        batch_args += ["--render", str(args.out / "render" / "####.png")]
    command = blender_command(BATCH_SCRIPT, batch_args)
    print(f"dlatrack demo: {' '.join(command)}", flush=True)
    status = subprocess.run(command, check=False).returncode
    if status == 0:
        print(f"dlatrack demo: done — scene {args.out / 'scene.blend'}, job folder {args.out / 'job'}, "
              f"renders in {args.out / 'render'}", flush=True)
        print(summarise(args.out / "job", args.avatar), flush=True)
    else:
        print(f"dlatrack demo: the Blender batch job failed (exit {status}); see the messages above", flush=True)
    return status


def keep_previous_job(job: Path) -> None:
    """A job folder holds one job (the engine refuses another's), so a rerun moves the last run's folder to
    `job.previous` (replacing an older one) instead of failing or deleting it."""
    if not job.exists():
        return
    previous = job.with_name(job.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    job.rename(previous)
    print(f"dlatrack demo: kept the previous run's job folder as {previous}", flush=True)


def summarise(job: Path, avatar_path: Path) -> str:
    """Evaluate the demo's job (writes its report/) and say where to look and the figures that matter: PSNR,
    and on clips with ground truth the vertex and rotation error."""
    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.device import pick_device
    from dlatrack_engine.metrics.evaluate import evaluate
    from dlatrack_engine.report.write import write_report

    evaluation = evaluate(job, Avatar.load(avatar_path, pick_device(None)), csim=False)
    report = write_report(job, evaluation)
    return result_lines(job / "preview.mp4", report, evaluation.means, evaluation.lost_frames)


def result_lines(preview: Path, report: Path, means: dict[str, float], lost_frames: list[int]) -> str:
    lines = [f"dlatrack demo: preview {preview if preview.exists() else '(not written)'}",
             f"dlatrack demo: report  {report}",
             f"dlatrack demo: PSNR {means['psnr']:.2f} dB (face region, the relit avatar vs the video)"]
    if "vertex_mm" in means:
        lines.append(f"dlatrack demo: vertex error {means['vertex_mm']:.1f} mm, rotation error "
                     f"{means['rotation_deg']:.2f}° (against the clip's ground truth)")
    if lost_frames:
        lines.append(f"dlatrack demo: no face detected in frames {lost_frames}")
    return "\n".join(lines)
