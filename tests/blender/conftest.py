"""Fixtures of the Blender-side tests (data made once per session, in the engine venv)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for path in (HERE.parents[1], HERE.parent, HERE.parent / "addon", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from blender_data import make_synthetic_job  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_job(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_synthetic_job(tmp_path_factory.mktemp("dlatrack_blender"))
