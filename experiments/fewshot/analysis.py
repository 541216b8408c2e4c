"""Seeds of a few-shot setting pooled, and the time each method takes to reach MAML's best
meta-test value (paper, section 6: "BMG reaches MAML's accuracy in about half the time").

A *setting* is the runs of one group (task, ways, shots) that differ only in their seed.
Its curve is the mean over those seeds of the meta-test value at each evaluation step,
against the mean meta-training wall-clock (compile and evaluation excluded) at that step.
The *target* is the best value of the MAML setting's curve (its final value where the curve
has flattened; the best where MAML's meta-training is unstable and its last evaluations are
worse, so that a late spike does not make the target easy); a setting *reaches* it at the
first evaluation where its curve is at least as good. Intervals are 95% percentile
bootstraps over seeds (each setting's seeds resampled independently, the target recomputed
from the resampled MAML seeds); a resample that never reaches the target counts as never.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from experiments.common.stats import bootstrap_ci

SAMPLES = 2_000


def curve(runs: list[dict[str, Any]]):
    """``(steps, seconds, values)`` of the runs' mean curve, on the evaluation steps all
    of them have (a run that diverged ends the curve at its last good evaluation); ``values``
    is ``[steps, runs]``."""
    common = sorted(set.intersection(*({r["step"] for r in run["evals"]} for run in runs)))
    at = [{r["step"]: r for r in run["evals"]} for run in runs]
    seconds = np.array([[a[s]["train_time_s"] for a in at] for s in common]).mean(axis=1)
    values = np.array([[a[s]["mean"] for a in at] for s in common])
    return np.array(common), seconds, values


def best_setting(settings: dict[str, list[dict[str, Any]]], names: list[str]) -> str:
    """Of the settings ``names`` (MAML's, say, with and without clipping), the one whose mean
    curve reaches the best value: the reference a comparison should be made against."""
    higher = settings[names[0]][0]["evals"][0]["metric"] == "accuracy"
    sign = 1.0 if higher else -1.0
    return max(names, key=lambda name: sign * _best(curve(settings[name])[2], higher))


def _best(values: np.ndarray, higher_is_better: bool) -> float:
    """The best value of the mean over the columns (seeds) of ``values[steps, seeds]``."""
    mean = values.mean(axis=1)
    return mean.max() if higher_is_better else mean.min()


def first_reach(mean: np.ndarray, target: float, higher_is_better: bool) -> int | None:
    """The index of the first entry of ``mean`` at least as good as ``target``."""
    hits = np.flatnonzero(mean >= target if higher_is_better else mean <= target)
    return int(hits[0]) if hits.size else None


def reach(settings: dict[str, list[dict]], maml: str, *, seed: int = 0) -> dict[str, dict]:
    """Per setting: its final value, and the steps and seconds to reach MAML's best value,
    each with a bootstrap interval over seeds, and that time relative to the time MAML's own
    curve takes to reach it (``ratio``; NaN: never reached).

    Args:
      settings: runs by setting label (one of them MAML's: ``maml``).
      maml: the label of the MAML setting.
    """
    higher = settings[maml][0]["evals"][0]["metric"] == "accuracy"
    curves = {name: curve(runs) for name, runs in settings.items()}
    rng = np.random.default_rng(seed)

    def crossing(name, columns, target):
        steps, seconds, values = curves[name]
        index = first_reach(values[:, columns].mean(axis=1), target, higher)
        return (np.nan, np.nan) if index is None else (steps[index], seconds[index])

    def best(columns):
        return _best(curves[maml][2][:, columns], higher)

    everything = {name: np.arange(c[2].shape[1]) for name, c in curves.items()}
    target = best(everything[maml])
    samples = {name: [] for name in settings}
    for _ in range(SAMPLES):
        picks = {name: rng.choice(n, size=n.size) for name, n in everything.items()}
        t = best(picks[maml])
        for name in settings:
            samples[name].append(crossing(name, picks[name], t))
    out = {}
    maml_seconds = crossing(maml, everything[maml], target)[1]
    maml_boot = np.array(samples[maml])[:, 1]
    for name in settings:
        steps, seconds = crossing(name, everything[name], target)
        boot = np.array(samples[name])
        finals = curves[name][2][-1]
        out[name] = {
            "seeds": int(finals.size),
            "final": float(finals.mean()),
            "final_ci": bootstrap_ci(finals)[1:],
            "target": float(target),
            "steps": float(steps),
            "seconds": float(seconds),
            "steps_ci": _interval(boot[:, 0]),
            "seconds_ci": _interval(boot[:, 1]),
            "ratio": float(seconds / maml_seconds),
            "ratio_ci": _interval(boot[:, 1] / maml_boot),
            "reached": float(np.mean(np.isfinite(boot[:, 1]))),
        }
    return out


def _interval(values) -> tuple[float, float]:
    """The 2.5 and 97.5 percentiles (nearest sample), never-reached resamples (NaN) counted
    as +inf."""
    values = np.asarray(values, np.float64)
    values = np.where(np.isnan(values), np.inf, values)
    low, high = np.quantile(values, [0.025, 0.975], method="nearest")
    return float(low), float(high)
