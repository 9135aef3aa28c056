"""Paired comparison of two methods scored on the same samples (issue 4: is G ahead of SH, or level?).

A mean PSNR per method hides whether a 0.1 dB lead is consistent or noise. Both methods are scored on the
same frames and cameras, so the per-sample difference a_i − b_i removes what the samples share (a hard
frame is hard for both) and its spread says how sure the lead is. The confidence interval is a percentile
bootstrap of the mean difference: no normality assumption, numpy only, and seeded so that a package's
recorded evaluation is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PairedDifference:
    """Mean of a − b over paired samples, its bootstrap confidence interval and a's share of wins."""

    mean: float
    low: float
    high: float
    wins: float  # fraction of samples with a > b
    samples: int


def paired_difference(
    a: list[float] | np.ndarray,
    b: list[float] | np.ndarray,
    groups: list[int] | np.ndarray | None = None,
    confidence: float = 0.95,
    resamples: int = 10_000,
    seed: int = 0,
) -> PairedDifference:
    """Compare a and b sample by sample (same length, same order). `groups` labels samples that are not
    independent (the cameras of one frame share its lighting): the bootstrap then resamples whole groups."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"paired_difference: need two equal-length, non-empty 1-D lists, got {a.shape} and {b.shape}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"paired_difference: confidence must be in (0, 1), got {confidence}")
    diff = a - b
    labels = np.arange(diff.size) if groups is None else np.asarray(groups)
    if labels.shape != diff.shape:
        raise ValueError(f"paired_difference: {labels.size} group labels for {diff.size} samples")
    _, group_of = np.unique(labels, return_inverse=True)
    sums = np.bincount(group_of, weights=diff)  # per group: sum of differences and sample count
    counts = np.bincount(group_of).astype(np.float64)
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, sums.size, size=(resamples, sums.size))
    means = sums[picks].sum(axis=1) / counts[picks].sum(axis=1)
    tail = 100.0 * (1.0 - confidence) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return PairedDifference(float(diff.mean()), float(low), float(high), float((diff > 0).mean()), int(diff.size))
