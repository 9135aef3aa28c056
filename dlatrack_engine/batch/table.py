"""The batch's result table: one row per clip, printed at the end and kept in `DIR/batch.json`.

`batch.json` is rewritten (atomically) each time a clip ends, so a driver that dies mid-batch still leaves
the rows it had; the next run starts a fresh table from the job folders.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlatrack_engine.wire.atomic import atomic_write_bytes

BATCH_FILE = "batch.json"
# completed: tracked by this run; skipped: complete before it; failed: error in the row; interrupted: the
# batch was stopped (Ctrl-C) before the clip ended, its folder resumes on the next run.
STATES = ("pending", "completed", "skipped", "failed", "interrupted")


@dataclass
class ClipResult:
    clip: str
    job: str
    state: str = "pending"
    frames: int = 0  # frames tracked in the job folder
    computed: int = 0  # of them, computed by this run (the rest were resumed from the folder)
    psnr: float | None = None  # dB, face region, relit avatar vs the video (`dlatrack eval`)
    seconds: float = 0.0  # wall time of the clip's task, avatar loading included
    node: str = ""  # the machine that ran it
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClipResult:
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def format_table(rows: list[ClipResult]) -> str:
    """A plain-text table: clip, state, frames (computed now), PSNR, time, error."""
    header = ("job", "state", "frames", "PSNR dB", "time s", "error")
    cells = [(r.job, r.state, f"{r.frames} ({r.computed} new)" if r.state == "completed" else str(r.frames),
              "-" if r.psnr is None else f"{r.psnr:.2f}", f"{r.seconds:.1f}", r.error.splitlines()[0][:100] if r.error
              else "") for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)


def write_batch_json(out_dir: Path, rows: list[ClipResult], info: dict[str, Any]) -> Path:
    """`DIR/batch.json`: the run's settings (`info`), the state counts and every row."""
    counts = {state: sum(r.state == state for r in rows) for state in STATES if any(r.state == state for r in rows)}
    document = {**info, "counts": counts, "clips": [r.to_dict() for r in rows]}
    path = out_dir / BATCH_FILE
    atomic_write_bytes(path, (json.dumps(document, indent=1) + "\n").encode())
    return path


def read_batch_json(out_dir: Path) -> list[ClipResult]:
    return [ClipResult.from_dict(row) for row in json.loads((out_dir / BATCH_FILE).read_text())["clips"]]
