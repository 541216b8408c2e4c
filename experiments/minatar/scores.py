r"""The numbers of the paper's Atari ablation (section 5.2) for MinAtar, from run directories only.

A run directory is any folder (searched recursively) holding ``config.json`` and
``metrics.jsonl``, as written by ``experiments.minatar.train`` (a population of seeds) or
``experiments.atari.train`` (one seed of the real ALE; its game is ``game``, not ``env``, and
``experiments.atari.plot`` passes the ALE's random scores). Definitions:

* **Final score** of a run seed: the mean of its non-null ``episode_return`` values over the
  rows in the last ``final_fraction`` (default 0.1) of the run's frames, i.e. the rows with
  ``frames > (1 - final_fraction) * frames of the last row`` (at least the last row); each
  row's value counts once; NaN if no episode ended there. The paper uses the episodes between
  190M and 200M of 200M frames (the last 5%).
* **Normalised score** of a seed on a game: ``(score - random[game]) / (stacx[game] -
  random[game])``, ``random`` from `experiments.envs.minatar.RANDOM_SCORES` and ``stacx[game]``
  the mean final score over the STACX seeds of that game: 0 = random policy, 1 = STACX; a
  game without a STACX run is an error. (The paper normalises by human scores; MinAtar has
  none, so STACX is the unit.)
* A **configuration** of BMG: (target optimizer, matching, L). STACX corresponds to
  (SGD, L2, L=1) up to the meta-learning rate (paper). The runs of one game and configuration
  are pooled (their seeds together). A configuration's normalised score is the median, over
  the games it was run on, of its seed-mean normalised score. Std: over seeds, ddof 0.
* **Improvement** of BMG over STACX on a game: ``100 * (bmg - stacx) / (stacx - random)`` of
  the seed-mean final scores, in percent of STACX's margin over the random policy.
* **Training curves**: each seed's per-row returns, averaged over a trailing window of
  ``smooth`` rows (rows without episodes left out), normalised and interpolated onto the row
  frames of all runs up to the shortest run. Line: the median over games of the seed-mean
  curve; band: min-max over seeds of the per-seed median-over-games curves (seeds paired by
  index, up to the fewest seeds of a game).

The figures are drawn by `experiments.minatar.plot`.
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from experiments.common import runs
from experiments.envs import minatar

STACX = "stacx"
OPTIMIZERS = {"sgd": "SGD", "rmsprop": "RMSProp"}
MATCHINGS = {"l2": "L2", "kl": "KL", "kl_v": "KL&V"}


def label(key) -> str:
    """``STACX`` or e.g. ``BMG RMSProp KL&V L=4`` for a configuration key."""
    if key == STACX:
        return "STACX"
    opt, matching, steps = key
    return f"BMG {OPTIMIZERS.get(opt, opt)} {MATCHINGS.get(matching, matching)} L={steps}"


def sort_key(key):
    """Orders configurations: STACX, then by optimizer, matching and L."""
    if key == STACX:
        return (0,)
    opt, matching, steps = key
    order = lambda names, x: (list(names).index(x), "") if x in names else (len(names), x)
    return (1, order(MATCHINGS, matching), steps, order(OPTIMIZERS, opt))


def mean_std(x) -> tuple[float, float]:
    """Mean and std (ddof 0) of ``x`` over its non-NaN values."""
    return quiet(np.nanmean, x), quiet(np.nanstd, x)


def quiet(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` without the RuntimeWarning of all-NaN slices."""
    with warnings.catch_warnings():  # all-NaN slices give NaN, as they should
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kwargs)


def final_scores(frames: np.ndarray, returns: np.ndarray, final_fraction: float = 0.1):
    """Per seed, the mean non-null return of the rows in the last ``final_fraction`` of frames."""
    if not 0 < final_fraction <= 1:
        raise ValueError(f"final_fraction must be in (0, 1], got {final_fraction}")
    keep = frames > (1 - final_fraction) * frames[-1]
    keep[-1] = True
    return quiet(np.nanmean, returns[keep], axis=0)


@dataclasses.dataclass
class AtariRun:
    """One run directory: ``frames [rows]``, ``returns [rows, seeds]`` (NaN: no episode ended),
    ``final [seeds]`` (final scores)."""

    path: str
    config: dict
    frames: np.ndarray
    returns: np.ndarray
    final: np.ndarray

    @property
    def game(self) -> str:
        return self.config["env"] if "env" in self.config else self.config["game"]

    @property
    def key(self):
        """``STACX`` or the BMG configuration ``(target_optimizer, matching, L)``."""
        c = self.config
        bmg = (c["target_optimizer"], c["matching"], int(c["bootstrap_steps"]))
        return STACX if c["method"] == STACX else bmg


def load_run(run_dir: str | os.PathLike, *, final_fraction: float = 0.1) -> AtariRun:
    """Reads one run directory.

    Raises:
      runs.RunDirError: if it is not a MinAtar run directory with metric rows.
    """
    config = runs.read_config(run_dir)
    if config.get("method") not in (STACX, "bmg") or "total_frames" not in config:
        raise runs.RunDirError(
            f"{run_dir} is not a STACX / BMG run directory (its method is {config.get('method')!r})"
        )
    rows = runs.read_metrics(run_dir)
    if not rows:
        raise runs.RunDirError(f"{run_dir} has no metric rows yet")
    try:
        frames = np.array([r["frames"] for r in rows], dtype=float)
        returns = np.array([r["episode_return"] for r in rows], dtype=float)  # None -> NaN
    except (KeyError, TypeError, ValueError) as e:
        raise runs.RunDirError(
            f"{run_dir}/{runs.METRICS} does not hold STACX / BMG rows ({type(e).__name__}: {e})"
        ) from None
    if returns.ndim == 1:  # a run directory of one seed (the real ALE's)
        returns = returns[:, None]
    return AtariRun(
        str(run_dir), config, frames, returns, final_scores(frames, returns, final_fraction)
    )


def load_runs(root_or_dirs, *, final_fraction: float = 0.1) -> list[AtariRun]:
    """All run directories under a folder (or a list of folders), found recursively.

    Args:
      root_or_dirs: a folder, or several; run directories are the folders below them (or they
        themselves) holding ``config.json`` and ``metrics.jsonl``.
      final_fraction: the final-score window, a fraction of the run's frames.

    Returns:
      The finished runs (last row at ``total_frames`` or beyond), sorted by path; unfinished
      ones are left out with a warning.

    Raises:
      runs.RunDirError: if there is no finished run directory, or one has no metric rows.
    """
    roots = [root_or_dirs] if isinstance(root_or_dirs, str | os.PathLike) else list(root_or_dirs)
    found = {p.parent for r in roots for p in Path(r).rglob(runs.CONFIG)}
    dirs = sorted(d for d in found if (d / runs.METRICS).exists())
    if not dirs:
        where = ", ".join(map(str, roots))
        raise runs.RunDirError(f"no run directories (config.json + metrics.jsonl) under {where}")
    loaded = [load_run(d, final_fraction=final_fraction) for d in dirs]
    complete = [r for r in loaded if r.frames[-1] >= r.config["total_frames"]]
    for r in loaded:
        if r.frames[-1] < r.config["total_frames"]:
            warnings.warn(
                f"left out {r.path}: unfinished ({r.frames[-1]:,.0f} of "
                f"{r.config['total_frames']:,} frames); its final score would not be comparable",
                stacklevel=2,
            )
    if not complete:
        raise runs.RunDirError("no finished run directory (every run stopped early)")
    return complete


def pooled(runs_: Iterable[AtariRun]) -> dict[tuple, np.ndarray]:
    """Final scores per ``(game, configuration)``, the seeds of all its runs together."""
    out = {}
    for run in runs_:
        out[run.game, run.key] = np.concatenate([out.get((run.game, run.key), []), run.final])
    return out


def games(runs_: Iterable[AtariRun]) -> list[str]:
    """The games of the runs, in the order of `minatar.GAMES`."""
    names = {run.game for run in runs_}
    return [g for g in minatar.GAMES if g in names] + sorted(names - set(minatar.GAMES))


def stacx_margin(game, scores, random_scores) -> tuple[float, float]:
    """``(random[game], stacx[game] - random[game])``."""
    random_scores = minatar.RANDOM_SCORES if random_scores is None else random_scores
    if (game, STACX) not in scores:
        raise runs.RunDirError(f"no STACX run of {game}: STACX is the unit of the normalised score")
    if game not in random_scores:
        raise runs.RunDirError(
            f"no random-policy score of {game} in RANDOM_SCORES "
            "(measure it with python -m experiments.envs.minatar)"
        )
    stacx, rand = quiet(np.nanmean, scores[game, STACX]), float(random_scores[game])
    if np.isnan(stacx) or stacx == rand:
        raise runs.RunDirError(f"STACX's final score on {game} is {stacx}: cannot normalise by it")
    if stacx < rand:
        warnings.warn(f"STACX scores below the random policy on {game}", stacklevel=3)
    return rand, stacx - rand


def normalised_scores(runs_, *, random_scores=None) -> dict:
    """``{configuration: {game: seed-mean normalised score}}``."""
    scores = pooled(runs_)
    out = {}
    for (game, key), final in sorted(scores.items(), key=lambda kv: sort_key(kv[0][1])):
        rand, margin = stacx_margin(game, scores, random_scores)
        out.setdefault(key, {})[game] = float(quiet(np.nanmean, (final - rand) / margin))
    return out


def median_normalised(runs_, *, random_scores=None) -> dict:
    """``{configuration: median over its games of the seed-mean normalised score}``."""
    norm = normalised_scores(runs_, random_scores=random_scores)
    return {k: float(quiet(np.nanmedian, list(v.values()))) for k, v in norm.items()}


def best_config(runs_, *, random_scores=None):
    """The BMG configuration with the best median normalised score."""
    medians = median_normalised(runs_, random_scores=random_scores)
    bmg = {k: v for k, v in medians.items() if k != STACX and not np.isnan(v)}
    if not bmg:
        raise runs.RunDirError("no BMG run with a final score")
    return max(bmg, key=bmg.get)


def improvement(runs_, bmg_config, *, random_scores=None) -> dict[str, float]:
    """``{game: 100 (bmg - stacx) / (stacx - random)}`` (seed means), sorted by value."""
    norm = normalised_scores(runs_, random_scores=random_scores)
    if tuple(bmg_config) not in norm:
        raise runs.RunDirError(f"no runs of {label(tuple(bmg_config))}")
    # (bmg - stacx) / (stacx - random) = normalised(bmg) - 1.
    values = {g: 100 * (v - 1) for g, v in norm[tuple(bmg_config)].items()}
    return dict(sorted(values.items(), key=lambda kv: kv[1]))


def standardised_groups(runs_) -> list[tuple[str, str, np.ndarray]]:
    """``[(family, group, values)]`` for the right panel of `ablation_figure`.

    The final scores of all BMG seeds, each standardised by the mean and standard deviation of
    all final scores of its game (all runs and seeds, STACX included), grouped by target
    optimizer, by matching and by L; empty groups are left out.
    """
    scores = pooled(runs_)
    stats = {}
    for (game, _), final in scores.items():
        stats.setdefault(game, []).extend(final[~np.isnan(final)])
    stats = {g: (np.mean(v), np.std(v) or 1.0) for g, v in stats.items() if v}
    bmg = sorted({k for _, k in scores if k != STACX}, key=sort_key)
    opts = sorted({k[0] for k in bmg}, key=lambda o: sort_key((o, "", 0)))
    families = [
        ("optimizer", 0, {o: OPTIMIZERS.get(o, o) for o in opts}),
        ("matching", 1, {k[1]: MATCHINGS.get(k[1], k[1]) for k in bmg}),  # bmg: by matching
        ("L", 2, {s: f"L={s}" for s in sorted({k[2] for k in bmg})}),
    ]
    out = []
    for family, index, names in families:
        for value, name in names.items():
            z = [
                (f - stats[g][0]) / stats[g][1]
                for (g, k), finals in scores.items()
                if k != STACX and k[index] == value
                for f in finals
                if not np.isnan(f)
            ]
            if z:
                out.append((family, name, np.array(z)))
    return out


def summary_table(runs_, *, random_scores=None) -> str:
    """Markdown: per configuration, final score mean ± std per game and median normalised score."""
    scores, names = pooled(runs_), games(runs_)
    medians = median_normalised(runs_, random_scores=random_scores)
    lines = [
        "| configuration | " + " | ".join(names) + " | median normalised |",
        "|---" * (len(names) + 2) + "|",
    ]
    for key in sorted(medians, key=sort_key):
        cells = [
            "{:.2f} ± {:.2f}".format(*mean_std(scores[g, key])) if (g, key) in scores else "–"
            for g in names
        ]
        lines.append(f"| {label(key)} | " + " | ".join(cells) + f" | {medians[key]:.2f} |")
    return "\n".join(lines)


def marginals(runs_, *, random_scores=None) -> dict[str, dict]:
    """The ablation's factors one at a time: for each target optimizer, matching function and
    L, the mean normalised score over the BMG cells (configuration x game) that have it.

    Returns:
      ``{"optimizer": {"sgd": m, ...}, "matching": {...}, "L": {1: m, ...}}``.
    """
    norm = normalised_scores(runs_, random_scores=random_scores)
    cells: dict[str, dict] = {"optimizer": {}, "matching": {}, "L": {}}
    for key, per_game in norm.items():
        if key == STACX:
            continue
        for factor, level in zip(("optimizer", "matching", "L"), key, strict=True):
            cells[factor].setdefault(level, []).extend(per_game.values())
    return {
        factor: {level: float(quiet(np.nanmean, v)) for level, v in levels.items()}
        for factor, levels in cells.items()
    }


def marginals_table(runs_, *, random_scores=None) -> str:
    """`marginals` as one Markdown line per factor."""
    names = {**OPTIMIZERS, **MATCHINGS}
    lines = []
    for factor, levels in marginals(runs_, random_scores=random_scores).items():
        cells = [f"{names.get(level, f'L={level}')} {m:.3f}" for level, m in levels.items()]
        lines.append(f"- {factor}: " + ", ".join(cells))
    return "\n".join(lines)
