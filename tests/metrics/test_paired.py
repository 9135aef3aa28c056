"""Paired comparison (metrics/paired.py): the statistic behind "G ahead of SH" in the held-out evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from dlatrack_engine.metrics.paired import paired_difference


def test_a_constant_lead_is_decided_with_a_zero_width_interval():
    b = np.linspace(30.0, 40.0, 12)  # samples of very different difficulty...
    result = paired_difference(b + 0.25, b)  # ...and a always 0.25 ahead
    assert result.mean == pytest.approx(0.25)
    assert result.low == pytest.approx(0.25) and result.high == pytest.approx(0.25)
    assert result.wins == 1.0 and result.samples == 12


def test_identical_scores_are_level_and_undecided():
    scores = [31.0, 35.5, 38.2]
    result = paired_difference(scores, scores)
    assert (result.mean, result.low, result.high, result.wins) == (0.0, 0.0, 0.0, 0.0)


def test_a_lead_within_the_noise_is_undecided_and_a_consistent_one_is_not():
    rng = np.random.default_rng(1)
    b = rng.uniform(30.0, 40.0, 16)
    noisy = paired_difference(b + 0.1 + rng.normal(0.0, 1.0, 16), b)
    assert noisy.low < 0.0 < noisy.high, "the interval straddles 0: undecided"
    steady = paired_difference(b + 0.1 + rng.normal(0.0, 0.05, 16), b)
    assert 0.0 < steady.low < 0.1 < steady.high
    behind = paired_difference(b, b + 0.5 + rng.normal(0.0, 0.1, 16))
    assert behind.high < 0.0 and behind.wins == 0.0


def test_the_interval_matches_the_normal_approximation_for_many_samples():
    rng = np.random.default_rng(2)
    diff = rng.normal(0.3, 1.0, 400)
    result = paired_difference(diff, np.zeros_like(diff))
    half = 1.96 * diff.std(ddof=1) / np.sqrt(diff.size)
    assert result.low == pytest.approx(diff.mean() - half, abs=0.02)
    assert result.high == pytest.approx(diff.mean() + half, abs=0.02)


def test_it_is_reproducible_and_rejects_unpaired_input():
    a, b = [1.0, 2.0, 4.0, 3.0], [1.5, 1.0, 3.0, 3.5]
    assert paired_difference(a, b) == paired_difference(a, b)
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="equal-length"):
        paired_difference([], [])
    with pytest.raises(ValueError, match="confidence"):
        paired_difference(a, b, confidence=1.5)


def test_grouped_samples_are_resampled_together():
    rng = np.random.default_rng(3)
    frame_effect = rng.normal(0.0, 1.0, 8)  # one shared offset per frame, seen by its 5 cameras
    diff = np.repeat(frame_effect, 5) + rng.normal(0.0, 0.05, 40)
    frames = np.repeat(np.arange(8), 5)
    as_independent = paired_difference(diff, np.zeros(40))
    by_frame = paired_difference(diff, np.zeros(40), groups=frames)
    assert by_frame.mean == as_independent.mean
    assert by_frame.high - by_frame.low > 1.8 * (as_independent.high - as_independent.low)
    one_per_frame = paired_difference(diff.reshape(8, 5).mean(axis=1), np.zeros(8))
    assert by_frame.low == pytest.approx(one_per_frame.low, abs=0.05)
    with pytest.raises(ValueError, match="group labels"):
        paired_difference(diff, np.zeros(40), groups=frames[:10])
