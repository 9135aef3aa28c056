"""Shared test set-up: make the helper modules in `tests/` (e.g. `grid_topology`) importable from every area."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))
