r"""The paper's Atari ablation figure (section 5.2) for the real ALE, from run directories.

Reads every seed's run directory under ``--root`` (as ``python -m experiments.atari.sweep``
lays them out; final scores as defined in `experiments.minatar.scores`, over the last
``--final_fraction`` of each run's frames) and draws the three panels in the paper's unit:

  python -m experiments.atari.plot --root=runs/ale --out=docs/ale_small --game=ms_pacman

writes ``ale_small.png``/``.pdf`` — (left) the human-normalised score (0: random, 1: the
human tester) of each BMG configuration, median over games, STACX's dashed; (centre)
``--game``'s final episode return against L; (right) every BMG seed's final return
standardised per game, by target optimizer, matching and L — and ``ale_small_improvement``
(the best BMG configuration's human-normalised score minus STACX's per game, and both
training curves), and prints the
final scores with their human-normalised values. (MinAtar has no human scores, so its
figures take STACX as the unit; on the ALE a STACX that scores no better than random would
make that unit meaningless, so here every score is human-normalised.)
"""

from __future__ import annotations

import numpy as np

from experiments.common import cli, plotting, runs, stats
from experiments.envs import ale
from experiments.minatar import plot as minatar_plot  # its panels' drawing helpers
from experiments.minatar import scores

CLI = cli.Cli("experiments.atari.plot", __doc__)
_RUN_FLAGS = plotting.define_run_flags(CLI, "ALE")
_GAME = CLI.enum("game", "ms_pacman", ale.GAMES, "The game of the return-against-L panel.")

RANDOM_SCORES = {game: random for game, (random, _) in ale.RANDOM_HUMAN.items()}
"""The random-policy score of each game (the zero of every normalised score)."""


def human_table(runs_) -> str:
    """Markdown: per configuration and game, the final score (mean ± std over seeds), its
    human-normalised value and the number of seeds."""
    pooled, names = scores.pooled(runs_), scores.games(runs_)
    keys = sorted({k for _, k in pooled}, key=scores.sort_key)
    lines = [
        "| configuration | " + " | ".join(f"{g} (human-normalised)" for g in names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    for key in keys:
        cells = []
        for game in names:
            final = pooled.get((game, key))
            if final is None:
                cells.append("–")
                continue
            mean, std = scores.mean_std(final)
            norm = ale.human_normalised(game, mean) if np.isfinite(mean) else float("nan")
            cells.append(f"{mean:,.1f} ± {std:,.1f} ({norm:.3f}), {len(final)} seeds")
        lines.append(f"| {scores.label(key)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def score_matrices(runs_) -> dict:
    """``{configuration: [seeds, games] human-normalised final scores}`` over the games every
    configuration has; a configuration with a seed that has no final score is left out, and
    each game keeps its first ``n`` seeds, ``n`` the fewest any game has."""
    pooled, names = scores.pooled(runs_), scores.games(runs_)
    out = {}
    for key in sorted({k for _, k in pooled}, key=scores.sort_key):
        finals = [pooled.get((game, key)) for game in names]
        if any(f is None for f in finals):
            continue
        n = min(len(f) for f in finals)
        matrix = np.array(
            [
                [ale.human_normalised(g, x) for x in f[:n]]
                for g, f in zip(names, finals, strict=True)
            ]
        ).T
        if np.all(np.isfinite(matrix)):
            out[key] = matrix
    return out


def aggregate_table(runs_) -> str:
    """Markdown: per configuration, the median over games of the seed-mean human-normalised
    score (the papers' aggregate) and the interquartile mean over all seeds and games, each
    with a 95% stratified-bootstrap interval (rliable's estimators,
    `experiments.common.stats`)."""
    lines = [
        "| configuration | median [95% CI] | IQM [95% CI] | games x seeds |",
        "|---|---|---|---|",
    ]
    for key, matrix in score_matrices(runs_).items():
        cells = []
        for aggregate in (stats.median_of_means, stats.iqm):
            point, low, high = stats.stratified_bootstrap_ci(matrix, aggregate)
            cells.append(f"{point:.3f} [{low:.3f}, {high:.3f}]")
        shape = f"{matrix.shape[1]} x {matrix.shape[0]}"
        lines.append(f"| {scores.label(key)} | " + " | ".join(cells) + f" | {shape} |")
    return "\n".join(lines)


def human_normalised(runs_) -> dict:
    """``{configuration: {game: seed-mean final score, human-normalised}}``."""
    out = {}
    for (game, key), final in scores.pooled(runs_).items():
        mean = scores.quiet(np.nanmean, final)
        out.setdefault(key, {})[game] = ale.human_normalised(game, mean)
    return out


def _human_bars(ax, norm):
    """Left panel: per BMG configuration the median over games of the human-normalised
    score (dots: games), and STACX's median (dashed)."""
    bmg = sorted((k for k in norm if k != scores.STACX), key=scores.sort_key)
    for i, key in enumerate(bmg):
        values = np.array(list(norm[key].values()))
        color = minatar_plot.COLORS.get(key[0])
        ax.bar(i, scores.quiet(np.nanmedian, values), 0.7, color=color)
        ax.scatter(np.full(values.size, i), values, s=12, color="k", zorder=3)
    if scores.STACX in norm:
        stacx = scores.quiet(np.nanmedian, list(norm[scores.STACX].values()))
        ax.axhline(stacx, color="k", ls="--", lw=1, label="STACX")
        ax.legend(fontsize=8)
    names = [
        f"{scores.OPTIMIZERS.get(o, o)}\n{scores.MATCHINGS.get(m, m)}\nL={n}" for o, m, n in bmg
    ]
    ax.set_xticks(range(len(bmg)), names)
    ax.axhline(0.0, color="grey", lw=0.5)
    ax.set_ylabel("human-normalised score (0 random, 1 human)")
    ax.set_title("Median over games (dots: games)")


def ablation_figure(runs_, *, game_for_L: str):
    """The three panels: (left) human-normalised score by configuration, (centre) final
    return against L on ``game_for_L``, (right) every BMG seed's final return standardised per
    game, by target optimizer, matching and L."""
    fig, axes = plotting.pyplot().subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    _human_bars(axes[0], human_normalised(runs_))
    minatar_plot.against_L_panel(axes[1], scores.pooled(runs_), game_for_L)
    minatar_plot.standardised_panel(axes[2], scores.standardised_groups(runs_))
    return fig


def best_config(runs_):
    """The BMG configuration with the best median over games of its seed-mean
    human-normalised final score."""
    norm = {k: v for k, v in human_normalised(runs_).items() if k != scores.STACX}
    medians = {k: scores.quiet(np.nanmedian, list(v.values())) for k, v in norm.items()}
    medians = {k: v for k, v in medians.items() if np.isfinite(v)}
    if not medians:
        raise runs.RunDirError("no BMG run with a final score")
    return max(medians, key=medians.get)


def improvement(runs_, bmg_config) -> dict[str, float]:
    """``{game: 100 (hn(BMG) - hn(STACX))}``, the difference of the seed-mean human-normalised
    final scores in percentage points (the unit is human - random, so a STACX at or below
    the random policy does not blow it up), sorted by value."""
    norm = human_normalised(runs_)
    if scores.STACX not in norm or tuple(bmg_config) not in norm:
        raise runs.RunDirError(f"no STACX or no {scores.label(tuple(bmg_config))} runs")
    stacx, bmg = norm[scores.STACX], norm[tuple(bmg_config)]
    values = {g: 100 * (bmg[g] - stacx[g]) for g in bmg if g in stacx}
    return dict(sorted(values.items(), key=lambda kv: kv[1]))


def training_curves(runs_, key, *, smooth: int = 5):
    """``(frames, line, low, high)`` of configuration ``key``: the median over games of the
    seed-mean human-normalised return (a ``smooth``-row moving average) over the frames of
    the shortest run, and the min / max over seeds of each seed's median over games."""
    runs_ = [r for r in runs_ if r.key == key]
    if not runs_:
        raise runs.RunDirError(f"no runs of {scores.label(key)}")
    grid = np.unique(np.concatenate([r.frames for r in runs_]))
    grid = grid[grid <= min(r.frames[-1] for r in runs_)]
    per_game = {}
    for run in runs_:
        curve = minatar_plot.smooth_rows(run.returns, smooth)[:, 0]
        curve = np.interp(grid, run.frames, ale.human_normalised(run.game, curve))
        per_game.setdefault(run.game, []).append(curve)
    per_game = [np.stack(c, axis=1) for c in per_game.values()]  # [points, seeds] each
    line = scores.quiet(
        np.nanmedian, [scores.quiet(np.nanmean, c, axis=1) for c in per_game], axis=0
    )
    n = min(c.shape[1] for c in per_game)
    seeds = scores.quiet(np.nanmedian, [c[:, :n] for c in per_game], axis=0)  # [points, n]
    return (
        grid,
        line,
        scores.quiet(np.nanmin, seeds, axis=1),
        scores.quiet(np.nanmax, seeds, axis=1),
    )


def improvement_figure(runs_, *, bmg_config=None, smooth: int = 5):
    """Per game, a BMG configuration's (default: `best_config`) human-normalised final score
    minus STACX's (left), and both configurations' median human-normalised return over
    training (right)."""
    bmg_config = tuple(bmg_config or best_config(runs_))
    return minatar_plot.improvement_panels(
        improvement(runs_, bmg_config),
        {key: training_curves(runs_, key, smooth=smooth) for key in (scores.STACX, bmg_config)},
        title=f"{scores.label(bmg_config)} vs STACX, final score per game",
        gain_label="BMG − STACX, human-normalised score (points of %)",
        curve_label="human-normalised return, median over games",
        reference=0.0,
        smooth=smooth,
    )


def write_figures(root, out, *, game_for_L: str, final_fraction: float) -> str:
    """Writes ``out.png``/``.pdf`` (the three panels) and ``out_improvement.png``/``.pdf``
    (`improvement_figure`, when there are STACX and BMG runs with final scores); returns
    the table."""
    loaded = scores.load_runs(root, final_fraction=final_fraction)
    figures = {"": ablation_figure(loaded, game_for_L=game_for_L)}
    try:
        best = best_config(loaded)
        improvement(loaded, best)
        figures["_improvement"] = improvement_figure(loaded, bmg_config=best)
    except runs.RunDirError:  # no STACX or no BMG run with a final score
        pass
    written = plotting.save_named(out, figures)
    heading = "Human-normalised score over the games (95% stratified-bootstrap intervals):"
    tables = f"{human_table(loaded)}\n\n{heading}\n\n{aggregate_table(loaded)}"
    return f"{tables}\n\nwrote {', '.join(written)}"


def main(argv: list[str]) -> None:
    """Parses ``argv`` (program name first; bad flags: `plotting.read_run_flags`), reads the
    runs (`runs.RunDirError` if none can be), writes the figures and prints the tables."""
    CLI.parse(argv)
    root, out, final = plotting.read_run_flags(CLI, _RUN_FLAGS)
    print(
        f"Final episode return (the last {final:.0%} of frames; mean ± std over seeds; "
        "human-normalised):\n"
    )
    print(write_figures(root, out, game_for_L=_GAME.value, final_fraction=final))


if __name__ == "__main__":
    CLI.run(main)
