"""The batch tests reuse the fit tests' tiny avatar, clip and schedule (tests/fit/fit_fixtures.py)."""

from __future__ import annotations

import sys
from pathlib import Path

FIT = Path(__file__).resolve().parents[1] / "fit"
if str(FIT) not in sys.path:
    sys.path.insert(0, str(FIT))
