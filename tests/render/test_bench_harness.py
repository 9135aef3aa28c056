"""bench.harness: sections of RESULTS.md are replaced one at a time; timing statistics are sane."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.harness import markdown_table, time_fn, write_section


def test_write_section_creates_replaces_and_keeps_others(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_section("Alpha", "python -m bench.a", "| a |\n|---|\n| 1 |", path=path, machine="m1")
    write_section("Beta", "python -m bench.b", "beta body", path=path, machine="m2")
    write_section("Alpha", "python -m bench.a --fast", "new alpha", path=path, machine="m3")
    text = path.read_text()
    assert text.startswith("# Benchmark results")
    assert text.count("## Alpha") == 1 and text.count("## Beta") == 1
    assert "new alpha" in text and "| 1 |" not in text and "--fast" in text
    assert "beta body" in text and "Machine: m2" in text
    assert text.index("## Alpha") < text.index("## Beta")  # replaced in place
    with pytest.raises(ValueError, match="title"):
        write_section("two\nlines", "cmd", "body", path=path)


def test_time_fn_and_table() -> None:
    calls = []
    t = time_fn(lambda: calls.append(1), repeats=5, warmup=2)
    assert len(calls) == 7 and len(t.times_s) == 5 and len(t.cpu_times_s) == 5
    assert 0 <= t.min_ms <= t.median_ms
    table = markdown_table(["a", "b"], [[1, 2]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]
    with pytest.raises(ValueError, match="cells"):
        markdown_table(["a"], [[1, 2]])
