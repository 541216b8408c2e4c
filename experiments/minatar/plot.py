r"""The paper's Atari ablation figure (section 5.2) for MinAtar, drawn from run directories only.

Reads every run directory (a folder holding ``config.json`` and ``metrics.jsonl``) under
``--root``; the scores are defined in `experiments.minatar.scores`.

  python -m experiments.minatar.plot --root=runs/atari --out=docs/atari_quick --game=breakout

writes ``atari_quick.png``/``.pdf`` (`ablation_figure`; ``--game`` is the game of its
return-against-L panel), ``atari_quick_improvement.png``/``.pdf`` (`improvement_figure`) and
prints a Markdown table of the final scores (`summary_table`).
"""

from __future__ import annotations

import os

import numpy as np

from experiments.common import cli, plotting, runs
from experiments.minatar.config import GAMES
from experiments.minatar.scores import (
    MATCHINGS,
    OPTIMIZERS,
    STACX,
    best_config,
    improvement,
    label,
    load_runs,
    marginals_table,
    mean_std,
    normalised_scores,
    pooled,
    quiet,
    sort_key,
    stacx_margin,
    standardised_groups,
    summary_table,
)

CLI = cli.Cli("experiments.minatar.plot", __doc__)
_RUN_FLAGS = plotting.define_run_flags(CLI, "MinAtar")
_GAME = CLI.enum("game", "breakout", GAMES, "The game of the return-against-L panel.")

COLORS = {"sgd": "tab:blue", "rmsprop": "tab:red"}
MARKERS = {"l2": ("o", "-"), "kl": ("s", ":"), "kl_v": ("^", "-.")}


def _bars(ax, norm):
    bmg = [k for k in norm if k != STACX]
    groups = sorted({k[1:] for k in bmg}, key=lambda g: sort_key(("", *g)))
    opts = sorted({k[0] for k in bmg}, key=lambda o: sort_key((o, "", 0)))
    width, labelled = 0.8 / max(1, len(opts)), set()
    for i, (matching, steps) in enumerate(groups):
        for j, opt in enumerate(opts):
            if (opt, matching, steps) not in norm:
                continue
            x = i + (j - (len(opts) - 1) / 2) * width
            values = np.array(list(norm[opt, matching, steps].values()))
            name = None if opt in labelled else OPTIMIZERS.get(opt, opt)
            labelled.add(opt)
            ax.bar(x, quiet(np.nanmedian, values), 0.9 * width, color=COLORS.get(opt), label=name)
            ax.scatter(np.full(values.size, x), values, s=12, color="k", zorder=3)
    ax.axhline(1.0, color="k", ls="--", lw=1, label="STACX")
    ax.set_xticks(range(len(groups)), [f"{MATCHINGS.get(m, m)}\nL={s}" for m, s in groups])
    ax.set_ylabel("normalised score (0 random, 1 STACX)")
    ax.set_title("Median over games (dots: games)")
    ax.legend(fontsize=8)


def against_L_panel(ax, scores, game):
    """The centre panel on ``ax``: ``game``'s final return against L per target optimizer and
    matching, STACX as a band (``scores``: `experiments.minatar.scores.pooled`)."""
    mine = {k: v for (g, k), v in scores.items() if g == game}
    bmg = sorted((k for k in mine if k != STACX), key=sort_key)
    for opt, matching in dict.fromkeys(k[:2] for k in bmg):
        finals = {k[2]: mine[k] for k in bmg if k[:2] == (opt, matching)}
        marker, ls = MARKERS.get(matching, ("o", "-"))
        name = f"{OPTIMIZERS.get(opt, opt)} {MATCHINGS.get(matching, matching)}"
        mean, std = np.transpose([mean_std(f) for f in finals.values()])
        style = dict(color=COLORS.get(opt), marker=marker, ls=ls, capsize=3, label=name)
        ax.errorbar(list(finals), mean, yerr=std, **style)
    if STACX in mine:
        mean, std = mean_std(mine[STACX])
        ax.axhline(mean, color="k", ls="--", lw=1, label="STACX")
        ax.axhspan(mean - std, mean + std, color="k", alpha=0.08, lw=0)
    ax.set_xticks(sorted({k[2] for k in bmg}))
    if mine:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, f"no runs of {game}", ha="center", transform=ax.transAxes)
    ax.set_xlabel("bootstrap steps L")
    ax.set_ylabel("final episode return (mean ± std over seeds)")
    ax.set_title(f"{game}: return against L")


def standardised_panel(ax, groups):
    """The right panel on ``ax``: boxes of the per-game standardised returns of each group
    (`experiments.minatar.scores.standardised_groups`)."""
    import matplotlib.transforms

    blend = matplotlib.transforms.blended_transform_factory(ax.transData, ax.transAxes)
    families = list(dict.fromkeys(family for family, _, _ in groups))
    positions = []
    for family in families:  # one gap of 0.7 between families
        first = len(positions) + 0.7 * families.index(family)
        positions += [first + i for i, g in enumerate(g for g in groups if g[0] == family)]
        ax.text(
            first + (positions[-1] - first) / 2, 1.01, f"by {family}", ha="center", transform=blend
        )
    if groups:
        boxes = ax.boxplot(
            [g[2] for g in groups], positions=positions, widths=0.6, patch_artist=True
        )
        for box, (family, _, _) in zip(boxes["boxes"], groups, strict=True):
            box.set(facecolor=f"C{families.index(family)}", alpha=0.5)
        ax.set_xticks(positions, [g[1] for g in groups])
    ax.axhline(0.0, color="k", lw=0.5)
    ax.set_ylabel("final return, standardised per game")
    ax.set_title("BMG seeds of all games", pad=16)


def ablation_figure(runs_, *, game_for_L: str, random_scores=None):
    """The three-panel ablation figure (paper, section 5.2).

    Left: median normalised score per BMG configuration (bars, colour: target optimizer; dots:
    games; dashed: STACX). Centre: final return against L on ``game_for_L``, mean ± std over
    seeds, one line per (optimizer, matching); dashed: STACX, shaded ± std. Right: boxes of
    `standardised_groups`. Configurations that were not run are left out.

    Args:
      runs_: the runs (`AtariRun`, e.g. from `load_runs`).
      game_for_L: the game of the centre panel.
      random_scores: ``{game: random-policy score}`` (default `minatar.RANDOM_SCORES`).

    Returns:
      The matplotlib ``Figure``.

    Raises:
      runs.RunDirError: if a game has no STACX run or no random score.
    """
    fig, axes = plotting.pyplot().subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    _bars(axes[0], normalised_scores(runs_, random_scores=random_scores))
    against_L_panel(axes[1], pooled(runs_), game_for_L)
    standardised_panel(axes[2], standardised_groups(runs_))
    return fig


def smooth_rows(returns: np.ndarray, window: int) -> np.ndarray:
    """The trailing mean over ``window`` rows of ``returns`` ``[rows, ...]`` (NaN-aware)."""
    return np.stack(
        [
            quiet(np.nanmean, returns[max(0, i - window + 1) : i + 1], axis=0)
            for i in range(len(returns))
        ]
    )


def training_curves(runs_, key, *, smooth: int = 5, random_scores=None):
    """The median normalised score of configuration ``key`` over training (module docstring).

    Returns:
      ``(frames, line, low, high)``, arrays over the frames of the rows of all runs up to the
      shortest run: the median over games of the seed-mean curve and the min / max over seeds
      of the per-seed median-over-games curves.
    """
    runs_ = list(runs_)
    scores = pooled(runs_)
    grid = np.unique(np.concatenate([r.frames for r in runs_]))
    grid = grid[grid <= min(r.frames[-1] for r in runs_)]
    per_game = {}
    for run in (r for r in runs_ if r.key == key):
        rand, margin = stacx_margin(run.game, scores, random_scores)
        curves = (smooth_rows(run.returns, smooth) - rand) / margin
        curves = np.stack([np.interp(grid, run.frames, c) for c in curves.T], axis=1)
        per_game.setdefault(run.game, []).append(curves)
    if not per_game:
        raise runs.RunDirError(f"no runs of {label(key)}")
    per_game = [np.concatenate(c, axis=1) for c in per_game.values()]  # [points, seeds] each
    line = quiet(np.nanmedian, [quiet(np.nanmean, c, axis=1) for c in per_game], axis=0)
    n = min(c.shape[1] for c in per_game)
    seeds = quiet(np.nanmedian, [c[:, :n] for c in per_game], axis=0)  # [points, n]
    return grid, line, quiet(np.nanmin, seeds, axis=1), quiet(np.nanmax, seeds, axis=1)


def improvement_figure(runs_, *, bmg_config=None, smooth: int = 5, random_scores=None):
    """Per-game improvement of a BMG configuration over STACX, and the training curves.

    Args:
      runs_: the runs (`AtariRun`).
      bmg_config: ``(target_optimizer, matching, L)``, e.g. ``("rmsprop", "kl_v", 4)``;
        default: `best_config`.
      smooth: rows of the moving average of the training curves (`training_curves`).
      random_scores: as in `ablation_figure`.

    Returns:
      The matplotlib ``Figure``: improvement per game (left), curves (right).
    """
    bmg_config = tuple(bmg_config or best_config(runs_, random_scores=random_scores))
    curves = {
        key: training_curves(runs_, key, smooth=smooth, random_scores=random_scores)
        for key in (STACX, bmg_config)
    }
    return improvement_panels(
        improvement(runs_, bmg_config, random_scores=random_scores),
        curves,
        title=f"{label(bmg_config)} vs STACX",
        gain_label="improvement over STACX (% of STACX − random)",
        curve_label="normalised score, median over games",
        reference=1.0,
        smooth=smooth,
    )


def improvement_panels(
    gains: dict[str, float],
    curves: dict,
    *,
    title: str,
    gain_label: str,
    curve_label: str,
    reference: float,
    smooth: int,
):
    """The improvement figure's two panels: ``gains`` (``{game: BMG's gain over STACX}``)
    as bars (left), and ``curves`` (``{configuration key: (frames, line, low, high)}``,
    STACX's first, drawn black) with a dotted line at ``reference`` (right)."""
    import matplotlib.ticker

    fig, (left, right) = plotting.pyplot().subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    values = list(gains.values())
    left.bar(
        range(len(gains)), values, color=["tab:green" if v >= 0 else "tab:red" for v in values]
    )
    left.set_xticks(range(len(gains)), list(gains), rotation=30)
    left.axhline(0.0, color="k", lw=0.5)
    left.set_ylabel(gain_label)
    left.set_title(title)
    for (key, (frames, line, low, high)), color in zip(
        curves.items(), ("k", "tab:red"), strict=True
    ):
        right.plot(frames, line, color=color, label=label(key))
        right.fill_between(frames, low, high, color=color, alpha=0.2, lw=0)
    right.axhline(reference, color="grey", ls=":", lw=0.8)
    right.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter())
    right.set_xlabel("frames per seed")
    right.set_ylabel(curve_label)
    right.set_title(f"Training (band: min–max over seeds, {smooth}-row average)")
    right.legend(fontsize=8)
    return fig


def write_figures(
    root_or_dirs,
    out: str | os.PathLike,
    *,
    game_for_L: str,
    random_scores=None,
    final_fraction: float = 0.1,
) -> str:
    """Writes ``out.png/.pdf`` (ablation) and ``out_improvement.png/.pdf``; returns the table.

    ``random_scores``: ``{game: random-policy score}`` (default `minatar.RANDOM_SCORES`);
    ``final_fraction``: the final-score window (`load_runs`)."""
    loaded = load_runs(root_or_dirs, final_fraction=final_fraction)
    rs = dict(random_scores=random_scores)
    figures = {"": ablation_figure(loaded, game_for_L=game_for_L, **rs)}
    try:
        bmg_config = best_config(loaded, **rs)
    except runs.RunDirError:  # no BMG run with a final score yet: no improvement figure
        bmg_config = None
    if bmg_config:
        figures["_improvement"] = improvement_figure(loaded, bmg_config=bmg_config, **rs)
    written = plotting.save_named(out, figures)
    heading = "Mean normalised score of the BMG runs with each setting:"
    tables = f"{summary_table(loaded, **rs)}\n\n{heading}\n{marginals_table(loaded, **rs)}"
    return f"{tables}\nwrote {', '.join(written)}"


def main(argv: list[str]) -> None:
    """Reads the runs under ``--root``, writes the figures and prints the table (the flags'
    errors: `plotting.read_run_flags`; a root without run directories: `runs.RunDirError`)."""
    CLI.parse(argv)
    root, out, final = plotting.read_run_flags(CLI, _RUN_FLAGS)
    print(write_figures(root, out, game_for_L=_GAME.value, final_fraction=final))


if __name__ == "__main__":
    CLI.run(main)
