"""Inside Blender: segfault on the first `crashes` runs (default 1), then succeed; with `fail`, raise instead.

Each run appends a line to `args["runs"]`, so the test can count how many Blender sessions there were.
Entry points for both runners: `main(args)` (tests/blender_runner.py) and `steps(args)` (gui_runner.py).
"""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path


def main(args: dict) -> dict:
    runs = Path(args["runs"])
    before = runs.read_text().count("\n") if runs.exists() else 0
    with runs.open("a") as handle:
        handle.write("run\n")
    if args.get("fail"):
        raise RuntimeError("an ordinary failure inside Blender")
    if before < args.get("crashes", 1):
        ctypes.string_at(0)  # reads address 0: SIGSEGV, so Blender's crash handler writes blender.crash.txt
    return {"runs": before + 1}


def steps(args: dict) -> Iterator[float]:
    yield 0.1
    return main(args)
