r"""The paper's Atari ablation figure (section 5.2) for the real ALE, from run directories.

Reads every seed's run directory under ``--root`` (as ``python -m experiments.atari.sweep``
lays them out) and draws the MinAtar experiment's figures from them
(`experiments.minatar.plot`; definitions in `experiments.minatar.scores`), with the ALE's
random-policy scores as the zero of the normalised score and STACX as its unit:

  python -m experiments.atari.plot --root=runs/ale --out=docs/ale_small --game=ms_pacman

writes ``ale_small.png``/``.pdf`` — (left) normalised score by target optimizer, matching and
L; (centre) ``--game``'s final episode return against L; (right) every BMG seed's final
return standardised per game, by factor — and ``ale_small_improvement.png``/``.pdf`` (BMG over
STACX per game, training curves), and prints the final scores with their human-normalised
values (0: random, 1: the human tester; the paper's unit).
"""

from __future__ import annotations

import numpy as np

from experiments.common import cli
from experiments.envs import ale
from experiments.minatar import plot as minatar_plot
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
    text = minatar_plot.write_figures(
        root, out, game_for_L=_GAME.value, random_scores=RANDOM_SCORES, final_fraction=final
    )
    print(
        f"Final episode return (the last {final:.0%} of frames; mean ± std over seeds; "
        "human-normalised):\n"
    )
    print(human_table(scores.load_runs(root, final_fraction=final)))
    print("\nNormalised by STACX (0: random, 1: STACX):\n")
    print(text)


if __name__ == "__main__":
    CLI.run(main)
