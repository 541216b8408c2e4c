r"""The paper's two-colors figure (section 5.1), drawn from run directories only.

Left: the total return (cumulative reward) of each method against environment steps, the mean
over seeds with a band of one standard deviation. Right: the meta-learned entropy weight ε of
MG and BMG (mean over seeds, band of one standard deviation) over a window spanning several
reward swaps, which are marked by dotted lines.

  python -m experiments.plot --run_dirs=runs/tc/a2c,runs/tc/mg,runs/tc/bmg --out=runs/tc/fig

writes ``fig.png`` and ``fig.pdf`` and prints a table of the final total returns.

The MinAtar STACX / BMG ablation (section 5.2; see `experiments.plot_atari` for the
definitions) reads every run directory under a folder instead:

  python -m experiments.plot --atari_root=runs/atari --out=docs/atari_quick --atari_game=breakout

writes ``atari_quick.png``/``.pdf`` (the ablation figure; ``--atari_game`` is the game of its
return-against-L panel) and ``atari_quick_improvement.png``/``.pdf``, and prints a Markdown
table of the final scores. Give exactly one of ``--run_dirs`` and ``--atari_root``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from absl import app, flags

from experiments import runs

_RUN_DIRS = flags.DEFINE_list("run_dirs", None, "Run directories, one line each in the plot.")
_LABELS = flags.DEFINE_list("labels", None, "Legend labels (default: each run's method).")
_OUT = flags.DEFINE_string("out", None, "Output path without extension (.png and .pdf).")
_ATARI_ROOT = flags.DEFINE_string(
    "atari_root", None, "A folder searched recursively for MinAtar run directories."
)
_ATARI_GAME = flags.DEFINE_string(
    "atari_game", "breakout", "The game of the MinAtar ablation's return-against-L panel."
)
_WINDOW = flags.DEFINE_list(
    "window", None, "start,end env steps of the ε panel (default: the last 5 swap periods)."
)

COLORS = {"a2c": "tab:gray", "mg": "tab:blue", "bmg": "tab:red"}


class Run:
    """The metrics of one run directory as arrays ``[rows, seeds]``."""

    def __init__(self, run_dir: str, label: str | None = None):
        self.config = runs.read_config(run_dir)
        rows = runs.read_metrics(run_dir)
        if not rows:
            raise runs.RunDirError(f"{run_dir} has no metric rows yet")
        self.method = self.config["method"]
        self.label = label or self.method.upper()
        self.steps = np.array([r["env_steps"] for r in rows])
        self.total_return = np.array([r["cumulative_reward"] for r in rows])
        self.entropy_weight = np.array([r["entropy_weight"] for r in rows])
        self.reward_per_step = np.array([r["reward_per_step"] for r in rows])


def summary(runs_: list[Run]) -> str:
    """A Markdown table of each run's final total return and reward per step."""
    lines = [
        "| method | seeds | steps per seed | total return (mean ± std) | reward/step, last 10% |",
        "|---|---|---|---|---|",
    ]
    for run in runs_:
        final = run.total_return[-1]
        tail = run.reward_per_step[-max(1, len(run.steps) // 10) :].mean(axis=0)
        lines.append(
            f"| {run.label} | {final.size} | {run.steps[-1]:,} | "
            f"{final.mean():.0f} ± {final.std():.0f} | {tail.mean():.4f} ± {tail.std():.4f} |"
        )
    return "\n".join(lines)


def _band(ax, x, y, color, label):
    mean, std = y.mean(axis=1), y.std(axis=1)
    ax.plot(x, mean, color=color, label=label, lw=1.5)
    ax.fill_between(x, mean - std, mean + std, color=color, alpha=0.2, lw=0)


def figure(runs_: list[Run], *, window: tuple[int, int] | None = None):
    """The two-panel figure; returns the matplotlib ``Figure``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for run in runs_:
        _band(left, run.steps, run.total_return, COLORS.get(run.method), run.label)
    millions = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:g}M")
    left.xaxis.set_major_formatter(millions)
    left.set_xlabel("environment steps")
    left.set_ylabel("total return")
    left.set_title(f"Two-colors: total return ({runs_[0].total_return.shape[1]} seeds)")
    left.legend()

    meta_runs = [run for run in runs_ if run.method != "a2c"]
    swap = runs_[0].config["swap_period"]
    end = max(run.steps[-1] for run in runs_)
    start, stop = window or (max(0, end - 5 * swap), end)
    for run in meta_runs:
        keep = (run.steps >= start) & (run.steps <= stop)
        _band(right, run.steps[keep], run.entropy_weight[keep], COLORS.get(run.method), run.label)
    for t in range((start // swap + 1) * swap, stop + 1, swap):
        right.axvline(t, color="k", ls=":", lw=0.8)
    right.xaxis.set_major_formatter(millions)
    right.set_xlabel("environment steps (dotted: reward swaps)")
    right.set_ylabel("entropy weight ε")
    right.set_title("Meta-learned entropy regularisation")
    if meta_runs:
        right.legend()
    return fig


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if bool(_RUN_DIRS.value) == bool(_ATARI_ROOT.value):
        raise app.UsageError(
            "give exactly one of --run_dirs (two-colors) and --atari_root (MinAtar)"
        )
    if not _OUT.value:
        raise app.UsageError("--out is required")
    if _ATARI_ROOT.value:
        from experiments import plot_atari

        try:
            print(
                plot_atari.write_figures(
                    _ATARI_ROOT.value, _OUT.value, game_for_L=_ATARI_GAME.value
                )
            )
        except (runs.RunDirError, ValueError) as e:
            raise app.UsageError(str(e)) from e
        return
    labels = _LABELS.value or [None] * len(_RUN_DIRS.value)
    if len(labels) != len(_RUN_DIRS.value):
        raise app.UsageError("--labels needs one label per run directory")
    window = None
    if _WINDOW.value:
        if len(_WINDOW.value) != 2:
            raise app.UsageError("--window takes two numbers: start,end")
        window = tuple(int(float(v)) for v in _WINDOW.value)
    try:
        loaded = [Run(d, label) for d, label in zip(_RUN_DIRS.value, labels, strict=True)]
    except runs.RunDirError as e:
        raise app.UsageError(str(e)) from e
    fig = figure(loaded, window=window)
    out = Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        fig.savefig(out.with_suffix(suffix), dpi=150)
    print(summary(loaded))
    print(f"wrote {out.with_suffix('.png')} and {out.with_suffix('.pdf')}")


if __name__ == "__main__":
    app.run(main)
