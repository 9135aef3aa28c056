"""`dlatrack batch CLIP... --avatar A --out DIR`: track many clips at once on Ray, one task per clip, each
into DIR/<clip name>/ (a normal job folder). Without --address a local Ray uses this machine's cores and
GPUs; with one the batch joins that cluster (the clips, the avatar and DIR on a shared filesystem,
docs/batch.md). A rerun skips finished jobs and resumes the others. The table is printed and kept in
DIR/batch.json."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from dlatrack_engine.batch.clips import Clip
    from dlatrack_engine.batch.table import ClipResult
    from dlatrack_engine.batch.task import ClipRunner
    from dlatrack_engine.fit.pipeline import TrackOptions

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("batch", help="track many clips at once on Ray (local or a cluster)",
                              description=__doc__)
    p.add_argument("clips", nargs="+", metavar="CLIP",
                   help="video files, frame folders, folders of clips, or globs ('takes/*.mp4')")
    p.add_argument("--avatar", required=True, help="avatar package (folder or .zip)")
    p.add_argument("--out", required=True, help="batch folder: one job folder per clip, and batch.json")
    p.add_argument("--address", default=None,
                   help="Ray cluster to join ('auto', 'ray://head:10001', 'head:6379'); default: a local Ray")
    p.add_argument("--local-cpus", type=int, default=None,
                   help="cores a local Ray may use, e.g. to leave some for other work (default: all)")
    p.add_argument("--gpus-per-clip", type=float, default=None,
                   help="GPUs per clip, fractions share a GPU (0.25: four clips a GPU); default 1 with GPUs, else 0")
    p.add_argument("--cpus-per-clip", type=float, default=1.0, help="CPU cores per clip (torch threads)")
    p.add_argument("--retries", type=int, default=2, help="new tries of a clip whose worker died")
    p.add_argument("--quality", choices=("fast", "paper"), default="fast", help="schedule preset, as for `track`")
    p.add_argument("--key-frames", "-K", type=int, default=48, help="K for lighting adaptation; 0 = all frames")
    p.add_argument("--lighting-from", default=None, metavar="DIR",
                   help="reuse one stored lighting for every clip (`dlatrack adapt`): skips step 2")
    p.add_argument("--no-preview", action="store_true", help="skip each job's preview.mp4")
    p.add_argument("--worker-logs", action="store_true", help="show the Ray workers' logs here")
    p.set_defaults(func=run)


def batch_options(args: argparse.Namespace) -> TrackOptions:
    """`track`'s defaults with the few options a batch sets for every clip."""
    from dlatrack_engine.fit.pipeline import TrackOptions

    lighting_from = None if args.lighting_from is None else str(Path(args.lighting_from).resolve())
    return TrackOptions(key_frames=args.key_frames, quality=args.quality, write_preview=not args.no_preview,
                        lighting_from=lighting_from)


def run(args: argparse.Namespace, runner: ClipRunner | None = None) -> int:
    """The batch with a bar; 0 when every clip is tracked, 1 when one failed, 2 when the batch could not run.
    `runner` replaces the per-clip work (tests, bench)."""
    from dlatrack_engine.avatar.format import AvatarFormatError, load_avatar_package
    from dlatrack_engine.batch.clips import ClipListError, expand, name_jobs
    from dlatrack_engine.batch.ray_run import BatchError

    try:
        clips = name_jobs(expand(args.clips))
        avatar_name = str(load_avatar_package(args.avatar).config.get("name", "avatar"))
        return _run(args, clips, avatar_name, runner)
    except (ClipListError, AvatarFormatError, BatchError, OSError) as error:
        print(f"dlatrack batch: {error}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, clips: list[Clip], avatar_name: str, runner: ClipRunner | None) -> int:
    from dlatrack_engine.batch.ray_run import BatchPlan, RaySettings, run_batch
    from dlatrack_engine.batch.table import BATCH_FILE, format_table

    plan = BatchPlan(clips, Path(args.out).resolve(), args.avatar, batch_options(args), args.gpus_per_clip,
                     args.cpus_per_clip, args.retries)
    settings = RaySettings(args.address, args.local_cpus, args.worker_logs)
    with tqdm(total=len(clips), desc="batch", unit="clip", dynamic_ncols=True,
              bar_format="{l_bar}{bar}| {n:.1f}/{total} clips [{elapsed}<{remaining}{postfix}]") as bar:

        def progress(done: float, rows: list[ClipResult]) -> None:
            failed = sum(r.state == "failed" for r in rows)
            bar.n = done
            bar.set_postfix_str(f"{failed} failed" if failed else "", refresh=True)

        extra = {} if runner is None else {"runner": runner}
        rows = run_batch(plan, settings, avatar_name, progress, **extra)
        progress(len(rows), rows)
    tqdm.write(format_table(rows))
    tqdm.write(f"table: {plan.out_dir / BATCH_FILE}")
    return 1 if any(r.state == "failed" for r in rows) else 0
