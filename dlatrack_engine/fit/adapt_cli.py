"""`dlatrack adapt VIDEO --avatar A --out DIR`: steps 1-2 alone, so that one adapted lighting serves every
take shot in the same room (`dlatrack track TAKE --lighting-from DIR` skips step 2).

DIR is a resumable job folder; its `lighting/` is the lighting folder (docs/conventions.md), which stands
alone and may be copied anywhere. `dlatrack track VIDEO --out DIR` with the same options later adds step 3.
"""

from __future__ import annotations

import argparse

from tqdm import tqdm

from dlatrack_engine.fit.cli import add_request_arguments, run_with_progress


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("adapt", help="adapt the lighting to a video once (steps 1-2), to reuse on other takes",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_request_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dlatrack_engine.fit.pipeline import adapt_video_lighting
    from dlatrack_engine.wire.lighting_folder import LIGHTING_DIR

    summary = run_with_progress(adapt_video_lighting, args)
    if summary.cancelled:
        tqdm.write(f"interrupted: {summary.out_dir} is resumable; rerun the same command")
        return 130
    seconds = ", ".join(f"{k} {v:.0f}s" for k, v in summary.seconds.items())
    tqdm.write(f"adapted the lighting on {len(summary.key_frames)} key frames -> {summary.out_dir}/{LIGHTING_DIR}; "
               f"{seconds}; reuse it with `dlatrack track TAKE --lighting-from {summary.out_dir}`")
    return 0
