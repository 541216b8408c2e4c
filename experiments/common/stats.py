"""Confidence intervals over seeds, shared by the experiments' tables.

A 95% percentile bootstrap with a fixed seed, so the same runs give the same table. With few
seeds a percentile bootstrap is narrower than the uncertainty it stands for: read it as the
spread of the seeds, not as a guarantee.
"""

from __future__ import annotations

import numpy as np


def bootstrap_ci(values, *, samples: int = 10_000, seed: int = 0):
    """``(mean, low, high)``: the mean over seeds and its 95% percentile-bootstrap interval
    (all NaN if a value is not finite)."""
    values = np.asarray(values, np.float64)
    if not np.all(np.isfinite(values)):
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = rng.choice(values, size=(samples, values.size), replace=True).mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(values.mean()), float(low), float(high)


def median_of_means(scores) -> float:
    """The median over tasks (columns) of the mean over runs (rows) of ``scores [runs,
    tasks]``: the Atari papers' median score (rliable's ``aggregate_median``)."""
    return float(np.median(np.mean(np.asarray(scores, np.float64), axis=0)))


def iqm(scores) -> float:
    """The interquartile mean of all of ``scores [runs, tasks]``: the mean of the middle 50%
    of the runs' scores over every task (Agarwal et al. 2021, rliable's ``aggregate_iqm``)."""
    from scipy import stats

    return float(stats.trim_mean(np.asarray(scores, np.float64), 0.25, axis=None))


def stratified_bootstrap_ci(scores, aggregate, *, samples: int = 2_000, seed: int = 0):
    """``(point, low, high)``: ``aggregate(scores)`` and its 95% percentile interval under a
    stratified bootstrap, each task's (column's) runs resampled with replacement on their own
    (rliable's default; Agarwal et al. 2021). ``scores`` is ``[runs, tasks]``, all finite."""
    scores = np.asarray(scores, np.float64)
    runs, tasks = scores.shape
    rng = np.random.default_rng(seed)
    columns = np.arange(tasks)
    values = [
        aggregate(scores[rng.integers(0, runs, size=(runs, tasks)), columns])
        for _ in range(samples)
    ]
    low, high = np.percentile(values, [2.5, 97.5])
    return aggregate(scores), float(low), float(high)
