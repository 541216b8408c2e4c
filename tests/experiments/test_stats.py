"""Aggregates over games of `experiments.common.stats`: the median of per-game means, the
interquartile mean, and the stratified bootstrap's interval (rliable's definitions)."""

import numpy as np
import pytest

from experiments.common import stats

# 3 runs (rows) x 2 games (columns).
SCORES = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])


def test_median_of_means_is_the_median_over_games_of_the_runs_mean():
    assert stats.median_of_means(SCORES) == pytest.approx(np.median([2.0, 20.0]))
    assert stats.median_of_means([[1.0, 5.0, 100.0]]) == 5.0  # robust to one outlying game


def test_iqm_is_the_mean_of_the_middle_half_of_all_scores():
    # Sorted: 1, 2, 3, 10, 20, 30; a quarter (one score) cut at each end.
    assert stats.iqm(SCORES) == pytest.approx(np.mean([2.0, 3.0, 10.0, 20.0]))
    assert stats.iqm(np.arange(8.0).reshape(4, 2)) == pytest.approx(np.mean([2, 3, 4, 5]))


def test_the_stratified_bootstrap_resamples_runs_within_each_game():
    point, low, high = stats.stratified_bootstrap_ci(SCORES, stats.median_of_means)
    assert point == stats.median_of_means(SCORES) and low < point < high
    # Resampling runs within a game never mixes games: with identical runs there is nothing
    # to resample, and the interval is the point.
    same = np.array([[1.0, 10.0]] * 4)
    assert stats.stratified_bootstrap_ci(same, stats.iqm) == (5.5, 5.5, 5.5)
    # A game's mean lies between its runs' extremes in every resample.
    _, low, high = stats.stratified_bootstrap_ci(SCORES[:, :1], stats.median_of_means)
    assert 1.0 <= low < high <= 3.0
    assert stats.stratified_bootstrap_ci(SCORES, stats.iqm) == stats.stratified_bootstrap_ci(
        SCORES, stats.iqm
    )  # seeded
