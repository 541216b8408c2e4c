r"""The paper's Atari ablation figure (section 5.2) for the real ALE, from run directories.

Reads every seed's run directory under ``--root`` (as ``python -m experiments.atari.sweep``
lays them out; final scores as defined in `experiments.minatar.scores`, over the last
``--final_fraction`` of each run's frames) and draws the three panels in the paper's unit:

  python -m experiments.atari.plot --root=runs/ale --out=docs/ale_small --game=ms_pacman

writes ``ale_small.png``/``.pdf`` — (left) the human-normalised score (0: random, 1: the
human tester) of each BMG configuration, median over games, STACX's dashed; (centre)
``--game``'s final episode return against L; (right) every BMG seed's final return
standardised per game, by target optimizer, matching and L — and ``ale_small_improvement``
(the best BMG configuration over STACX per game, and both training curves), and prints the
final scores with their human-normalised values. (MinAtar has no human scores, so its
figures take STACX as the unit; on the ALE a STACX that scores no better than random would
make that unit meaningless, so only the improvement figure, which is relative to STACX by
definition, uses it.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from experiments.common import cli, runs, stats
from experiments.envs import ale
from experiments.minatar import plot as minatar_plot  # its panels' drawing helpers
from experiments.minatar import scores

CLI = cli.Cli("experiments.atari.plot", __doc__)
_ROOT = CLI.string("root", None, "A folder searched recursively for ALE run directories.")
_OUT = CLI.string("out", None, "Output path without extension (.png and .pdf).")
_GAME = CLI.enum("game", "ms_pacman", ale.GAMES, "The game of the return-against-L panel.")
_FINAL = CLI.real(
    "final_fraction",
    0.1,
    "The final score's window, a fraction of each run's frames (the paper's: the last 5%; "
    "short runs need more to hold finished games).",
)

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
    fig, axes = minatar_plot._pyplot().subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    _human_bars(axes[0], human_normalised(runs_))
    minatar_plot._against_L(axes[1], scores.pooled(runs_), game_for_L)
    minatar_plot._boxes(axes[2], scores.standardised_groups(runs_))
    return fig


def improvement_figure(runs_, *, bmg_config=None):
    """Per-game improvement of a BMG configuration (default: the best by median
    normalised score) over STACX in % of STACX's margin over the random policy, and both
    training curves (MinAtar's figure, `experiments.minatar.plot.improvement_figure`, with
    the ALE's random scores)."""
    return minatar_plot.improvement_figure(
        runs_, bmg_config=bmg_config, random_scores=RANDOM_SCORES
    )


def write_figures(root, out, *, game_for_L: str, final_fraction: float) -> str:
    """Writes ``out.png``/``.pdf`` (the three panels) and ``out_improvement.png``/``.pdf``
    (`improvement_figure`, when there are STACX and BMG runs with final scores); returns
    the table."""
    loaded = scores.load_runs(root, final_fraction=final_fraction)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    figures = {out: ablation_figure(loaded, game_for_L=game_for_L)}
    try:
        best = scores.best_config(loaded, random_scores=RANDOM_SCORES)
    except runs.RunDirError:  # no STACX or no BMG run with a final score
        best = None
    if best is not None:
        figures[out.with_name(out.name + "_improvement")] = improvement_figure(
            loaded, bmg_config=best
        )
    written = []
    for path, fig in figures.items():
        for suffix in (".png", ".pdf"):
            fig.savefig(path.with_name(path.name + suffix), dpi=150, bbox_inches="tight")
            written.append(str(path.with_name(path.name + suffix)))
        minatar_plot._pyplot().close(fig)
    return (
        human_table(loaded)
        + "\n\nHuman-normalised score over the games (95% stratified-bootstrap intervals):\n\n"
        + aggregate_table(loaded)
        + "\n\nwrote "
        + ", ".join(written)
    )


def main(argv: list[str]) -> None:
    """Parses ``argv`` (program name first), reads the runs, writes the figures and prints
    the tables.

    Raises:
      cli.UsageError: bad flags (nothing is read or written).
      runs.RunDirError: no run directory under ``--root``, or one that cannot be read.
      cli.RunError: an ``--out`` that cannot be written.
    """
    CLI.parse(argv)
    root = CLI.required(_ROOT, "the folder of ALE run directories")
    out = cli.check_output(CLI.required(_OUT, "the figures' path without extension"))
    final = _FINAL.value
    if not 0 < final <= 1:
        raise cli.UsageError(f"--final_fraction must be in (0, 1], got {_FINAL.value}")
    print(
        f"Final episode return (the last {final:.0%} of frames; mean ± std over seeds; "
        "human-normalised):\n"
    )
    print(write_figures(root, out, game_for_L=_GAME.value, final_fraction=final))


if __name__ == "__main__":
    CLI.run(main)
