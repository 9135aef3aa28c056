"""`dlatrack eval JOB... --avatar A`: metrics of finished job folders, as a table in the paper's layout
(Table 1 / 2 columns, plus ground-truth errors on synthetic clips); `--results` writes it as a section of
bench/RESULTS.md.

On clips with ground truth the table also has the appearance ceiling (metrics/oracle.py: the avatar at the
true state with lighting adapted there) and the loss = ceiling − tracked; computed once per job and inputs
(oracle.json in the job folder), skipped with --no-oracle."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

# Image metrics, then the ground-truth errors with their split (metrics/geometry.py): camera-frame vertex
# error, what is left after a rigid alignment, depth bias / mean |depth| / lateral error of the centroid,
# reprojection, rotation, jitter. A `|` inside a header is escaped: a bare one would add cells to the header row,
# and Markdown does not read a table whose header and delimiter rows differ in their number of cells.
COLUMNS = [("l2", "L2 ↓", "{:.2f}"), ("ssim", "SSIM ↑", "{:.3f}"), ("psnr", "PSNR ↑", "{:.2f}"),
           ("oracle_ssim", "oracle SSIM ↑", "{:.3f}"), ("oracle_psnr", "oracle PSNR ↑", "{:.2f}"),
           ("ssim_loss", "SSIM lost ↓", "{:.3f}"), ("psnr_loss", "PSNR lost dB ↓", "{:.2f}"),
           ("csim", "CSIM ↑", "{:.3f}"), ("vertex_mm", "vertex mm ↓", "{:.2f}"),
           ("aligned_mm", "rigid-aligned mm ↓", "{:.2f}"), ("depth_bias_mm", "depth bias mm", "{:+.2f}"),
           ("depth_abs_mm", r"\|depth\| mm ↓", "{:.2f}"), ("lateral_mm", "lateral mm ↓", "{:.2f}"),
           ("reprojection_px", "reproj. px ↓", "{:.2f}"), ("landmark_px", "landmark px ↓", "{:.2f}"),
           ("rotation_deg", "rot ° ↓", "{:.2f}"), ("jitter_mm", "jitter mm ↓", "{:.3f}")]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate tracked job folders (L2, SSIM, PSNR, CSIM, GT errors)",
                              description=__doc__)
    p.add_argument("jobs", nargs="+", help="job folders written by `dlatrack track`")
    p.add_argument("--avatar", required=True, help="the avatar package the jobs were tracked with")
    p.add_argument("--device", default=None)
    p.add_argument("--no-csim", action="store_true", help="skip CSIM (needs dlib-bin + face-recognition-models)")
    p.add_argument("--results", default=None, help="write the table as a section of this markdown file")
    p.add_argument("--section", default="Registration: evaluation", help="section title for --results")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the metrics of every job as JSON")
    p.add_argument("--no-oracle", action="store_true",
                   help="skip the appearance ceiling (the avatar at the ground-truth state; minutes of CPU the "
                        "first time per job, then read from the job folder's oracle.json)")
    p.add_argument("--no-report", action="store_true",
                   help="skip report/ in each job folder (plots, metrics.json, report.html)")
    p.set_defaults(func=run)


def format_table(rows: list[tuple[str, dict[str, float]]]) -> str:
    present = [c for c in COLUMNS if any(c[0] in m for _, m in rows)]
    lines = ["| method | " + " | ".join(c[1] for c in present) + " |", "|---" * (len(present) + 1) + "|"]
    for name, metrics in rows:
        cells = [c[2].format(metrics[c[0]]) if c[0] in metrics else "-" for c in present]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from dlatrack_engine.avatar.runtime import Avatar
    from dlatrack_engine.device import pick_device
    from dlatrack_engine.metrics.evaluate import evaluate

    avatar = Avatar.load(args.avatar, pick_device(args.device))
    rows, ceilings = [], []
    for job in args.jobs:
        evaluation = evaluate(job, avatar, csim=not args.no_csim, oracle=not getattr(args, "no_oracle", False))
        rows.append((Path(job).name, evaluation.means))
        ceilings.append(None if evaluation.oracle is None else evaluation.oracle.to_json())
        if not getattr(args, "no_report", False):
            from dlatrack_engine.report.write import write_report

            print(f"report: {write_report(job, evaluation)}")
    table = format_table(rows)
    print(table)
    if args.json:
        import json

        document = {"jobs": [{"job": str(Path(job).resolve()), "metrics": metrics, "oracle": ceiling}
                             for job, (_, metrics), ceiling in zip(args.jobs, rows, ceilings, strict=True)]}
        Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    if args.results:
        import sys

        sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
        from bench.harness import write_section

        write_section(args.section, "dlatrack eval " + " ".join(args.jobs), table, path=Path(args.results))
    return 0
