"""Shared test set-up: make the helper modules in `tests/` (e.g. `grid_topology`) importable from every area,
and `DLATRACK_REQUIRE_GPU=1`: on a machine that must run the GPU tests, a `gpu`-marked test that skips (no
CUDA, nvdiffrast failing to import, any other skip) fails instead, with what CUDA and nvdiffrast reported."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

REQUIRE_GPU = "DLATRACK_REQUIRE_GPU"


def gpu_required() -> bool:
    return os.environ.get(REQUIRE_GPU, "").strip().lower() in ("1", "true", "yes")


def gpu_diagnosis() -> str:
    """Why the GPU stack is unusable: torch's CUDA state and the nvdiffrast import error (which
    `nvdiffrast_available()` only logs at debug level)."""
    import torch

    lines = [f"torch {torch.__version__}, built for CUDA {torch.version.cuda}, "
             f"torch.cuda.is_available() = {torch.cuda.is_available()}"]
    try:
        import nvdiffrast.torch  # noqa: F401
    except Exception as exc:
        lines.append(f"import nvdiffrast.torch: {type(exc).__name__}: {exc}")
    else:
        lines.append("import nvdiffrast.torch: ok")
    return "\n".join(lines)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and gpu_required() and item.get_closest_marker("gpu") is not None):
        return
    if hasattr(report, "wasxfail"):  # an expected failure is not a skipped GPU test
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (f"{REQUIRE_GPU}=1, but this GPU test was skipped ({reason})\n{gpu_diagnosis()}")
