"""Shared benchmark harness: machine description, median-of-N timing, peak memory, RESULTS.md sections.

Several benchmarks share `bench/RESULTS.md`; each owns one `## title` section and rewrites only that one,
so benchmarks can be re-run independently without clobbering each other's numbers.

Typical use::

    from bench.harness import time_fn, machine_description, write_section, markdown_table
    t = time_fn(lambda: model(x), device=device, repeats=10, warmup=2)
    body = markdown_table(["size", "median ms"], [[256, f"{t.median_ms:.1f}"]])
    write_section("Renderer", "python -m bench.bench_render", body)
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import platform
import re
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from dlatrack_engine.wire.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

RESULTS_PATH = Path(__file__).resolve().parent / "RESULTS.md"
RESULTS_HEADER = (
    "# Benchmark results\n\n"
    "Each section is written by one benchmark (`python -m bench.<name>`); re-running a benchmark replaces\n"
    "only its own section. Times are medians of repeated runs after warm-up.\n"
)


@dataclass
class Timing:
    """Result of `time_fn`: per-repeat wall times in seconds and the peak memory seen (bytes or None)."""

    times_s: list[float] = field(default_factory=list)
    peak_memory_bytes: int | None = None
    cpu_times_s: list[float] = field(default_factory=list)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_s) * 1e3

    @property
    def median_cpu_ms(self) -> float:
        """Median process CPU time (all threads) per call: less sensitive than wall time to other
        processes competing for a shared machine's cores."""
        return statistics.median(self.cpu_times_s) * 1e3

    @property
    def min_ms(self) -> float:
        return min(self.times_s) * 1e3

    @property
    def peak_memory_mib(self) -> float | None:
        return None if self.peak_memory_bytes is None else self.peak_memory_bytes / 2**20


def _sync(device: torch.device | str | None) -> None:
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def time_fn(
    fn: Callable[[], object],
    device: torch.device | str | None = None,
    repeats: int = 10,
    warmup: int = 2,
) -> Timing:
    """Time `fn()` `repeats` times after `warmup` untimed calls; CUDA is synchronised around each call.

    Peak memory is torch's CUDA allocator peak on CUDA devices (reset after warm-up); on the CPU torch
    keeps no allocator statistics, so it is the growth of the process's peak RSS over warm-up and repeats:
    a lower bound (0 when an earlier, larger workload already raised the peak), None where unavailable.
    """
    if repeats < 1:
        raise ValueError(f"time_fn: repeats must be >= 1, got {repeats}")
    is_cuda = device is not None and torch.device(device).type == "cuda"
    rss_before = _peak_rss_bytes()  # before warm-up, so first-call allocations count
    for _ in range(warmup):
        fn()
    _sync(device)
    if is_cuda:
        torch.cuda.reset_peak_memory_stats(device)
    times: list[float] = []
    cpu_times: list[float] = []
    for _ in range(repeats):
        _sync(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu_start)
    if is_cuda:
        peak = int(torch.cuda.max_memory_allocated(device))
    else:
        rss_after = _peak_rss_bytes()
        peak = None if rss_before is None or rss_after is None else max(0, rss_after - rss_before)
    return Timing(times_s=times, peak_memory_bytes=peak, cpu_times_s=cpu_times)


def _peak_rss_bytes() -> int | None:
    """Process peak resident set size (Linux reports KiB, macOS bytes); None where unavailable."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if platform.system() == "Darwin" else peak * 1024)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: torch.device | str | None = None) -> str:
    """One line naming the CPU, core count, torch threads, OS, Python/torch versions and the GPU if any."""
    parts = [
        f"CPU: {_cpu_model()} ({os.cpu_count()} logical cores, torch threads {torch.get_num_threads()})",
        f"OS: {platform.system()} {platform.release()}",
        f"Python {platform.python_version()}, torch {torch.__version__}",
    ]
    if torch.cuda.is_available():
        names = ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        parts.append(f"GPU: {names} (CUDA {torch.version.cuda})")
    else:
        parts.append("GPU: none")
    if device is not None:
        parts.append(f"device used: {torch.device(device)}")
    if hasattr(os, "getloadavg"):
        # Shared machines: a load above the core count means the wall times below are inflated.
        parts.append("load average at start {:.1f}/{:.1f}/{:.1f}".format(*os.getloadavg()))
    return "; ".join(parts)


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-markdown table; cells are str()-ed, so format numbers before passing them."""
    lines = ["| " + " | ".join(str(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    if any(len(r) != len(headers) for r in rows):
        raise ValueError(f"markdown_table: every row must have {len(headers)} cells")
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


_SECTION_RE = re.compile(r"^## (.+?)\s*$", re.MULTILINE)


def write_section(
    title: str,
    command: str,
    markdown_body: str,
    path: Path | str | None = None,
    machine: str | None = None,
) -> Path:
    """Create or replace the `## title` section of RESULTS.md, keeping every other section as it was.

    The section records the command that produced it, the machine and the UTC date, then the body.
    """
    if "\n" in title or not title.strip():
        raise ValueError(f"write_section: title must be one non-empty line, got {title!r}")
    path = Path(path) if path is not None else RESULTS_PATH
    text = path.read_text(encoding="utf-8") if path.exists() else RESULTS_HEADER
    date = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"## {title}\n\n"
        f"- Command: `{command}`\n"
        f"- Machine: {machine or machine_description()}\n"
        f"- Date: {date}\n\n"
        f"{markdown_body.strip()}\n"
    )
    matches = list(_SECTION_RE.finditer(text))
    for i, m in enumerate(matches):
        if m.group(1).strip() == title.strip():
            end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
            text = text[: m.start()] + section + ("\n" if i + 1 < len(matches) else "") + text[end:]
            break
    else:
        text = text.rstrip("\n") + "\n\n" + section
    atomic_write_bytes(path, text.encode("utf-8"))
    log.info("wrote section %r of %s", title, path)
    return path
