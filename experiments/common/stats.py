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
