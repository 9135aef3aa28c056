"""The light stage's pattern schedule: balanced, seeded, extendable (sample_scenes/generator/rigs.py)."""

from __future__ import annotations

from collections import Counter

import pytest

from sample_scenes.generator.rigs import pattern_schedule


def test_every_group_is_lit_about_equally_often():
    schedule = pattern_schedule(25, 4, (2, 6), seed=0)
    patterns = [p for step in schedule for p in step]
    assert len(patterns) == 100
    assert all(2 <= len(p) <= 6 and p == sorted(set(p)) for p in patterns), "distinct groups, sorted"
    counts = Counter(g for p in patterns for g in p)
    assert set(counts) == set(range(50))
    assert max(counts.values()) - min(counts.values()) <= 2, counts
    assert len({tuple(p) for p in patterns}) == len(patterns), "no pattern repeats"


def test_schedule_is_seeded_and_a_prefix_of_a_longer_capture():
    assert pattern_schedule(10, 3, (1, 4), seed=5) == pattern_schedule(10, 3, (1, 4), seed=5)
    assert pattern_schedule(10, 3, (1, 4), seed=5) == pattern_schedule(30, 3, (1, 4), seed=5)[:10]
    assert pattern_schedule(10, 3, (1, 4), seed=5) != pattern_schedule(10, 3, (1, 4), seed=6)


def test_single_group_patterns_and_whole_dome():
    singles = [p for step in pattern_schedule(50, 1, (1, 1), seed=0) for p in step]
    assert sorted(g for p in singles for g in p) == list(range(50)), "one deck: each group lit alone once"
    assert pattern_schedule(2, 1, (50, 50), seed=0)[1] == [list(range(50))]


@pytest.mark.parametrize("sizes", [(0, 3), (4, 2), (1, 51)])
def test_bad_pattern_sizes_are_refused(sizes):
    with pytest.raises(ValueError, match="groups-per-pattern"):
        pattern_schedule(2, 2, sizes, seed=0)
