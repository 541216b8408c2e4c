r"""The paper's two-colors figure (section 5.1), drawn from run directories only.

Four panels, each the mean over seeds with a 95% bootstrap confidence band: the total return
(cumulative reward) of each method over the lifetime; the reward per step over the last four
swap periods (400k steps, swaps dotted); the meta-learned or scheduled ε (the actor-critics'
entropy weight, the Q-learners' exploration rate) over the same window; and ε folded over the
swap cycle (`analysis.folded`: its mean at each offset from a swap, over every swap but the
first). The table (`experiments.two_colors.analysis.table`) puts total return,
late reward per step and recovery time after a swap beside the public replication's figures.

  python -m experiments.two_colors.plot --run_dirs=runs/tc/a2c,runs/tc/mg,runs/tc/bmg \
      --out=runs/tc/fig

writes ``fig.png`` and ``fig.pdf`` and prints the table. ``--save_summaries=DIR`` also writes
each run's summary (``DIR/<label>.npz``: its config and metric arrays, a few hundred kB), and
``--run_dirs`` takes summaries in place of run directories: a figure is redrawn, and runs made
at different times are put in one figure, without keeping the run directories.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from experiments.common import cli, plotting
from experiments.two_colors import analysis as two_colors_analysis
from experiments.two_colors.analysis import Run

CLI = cli.Cli("experiments.two_colors.plot", __doc__)
_RUN_DIRS = CLI.string_list(
    "run_dirs", None, "Run directories or run summaries (.npz), one line each in the plot."
)
_LABELS = CLI.string_list("labels", None, "Legend labels (default: each run's method).")
_OUT = CLI.string("out", None, "Output path without extension (.png and .pdf).")
_SAVE_SUMMARIES = CLI.string(
    "save_summaries", None, "Also write each run's summary to this folder as <label>.npz."
)
_WINDOW = CLI.integer(
    "window",
    400_000,
    "Steps at the end of the lifetime shown in the right panels and used "
    "for the late reward, recovery and ε figures of the table.",
    lower_bound=1,
)

COLORS = {
    "a2c": "tab:gray",
    "mg": "tab:blue",
    "bmg": "tab:red",
    "q": "tab:olive",
    "q_bmg": "tab:purple",
}
_SPARE_COLORS = ("tab:green", "tab:orange", "tab:brown", "tab:cyan", "tab:pink")


def _epsilon_moves(run) -> bool:
    """Whether a run's ε is learned or scheduled (so worth a line in the ε panel)."""
    if run.method == "a2c":
        return False
    return run.method != "q" or bool(run.config.get("epsilon_decay_steps"))


def _colors(runs_) -> dict:
    """A colour per run label: its method's colour for the first run of a method, then
    spare colours, so two runs of one method (say A2C with and without clipping) differ."""
    colors, used, spare = {}, set(), iter(_SPARE_COLORS)
    for run in runs_:
        color = COLORS.get(run.method)
        colors[run.label] = next(spare, None) if color is None or color in used else color
        used.add(colors[run.label])
    return colors


def _band(ax, x, y, color, label, *, samples: int = 1000):
    """Mean over seeds (the columns of ``y``) with a 95% percentile-bootstrap band."""
    rng = np.random.default_rng(0)
    idx = rng.integers(0, y.shape[1], size=(samples, y.shape[1]))
    means = y[:, idx].mean(axis=2)
    low, high = np.percentile(means, [2.5, 97.5], axis=1)
    ax.plot(x, y.mean(axis=1), color=color, label=label, lw=1.3)
    ax.fill_between(x, low, high, color=color, alpha=0.2, lw=0)


def figure(runs_: list[Run], *, window: int = 400_000):
    """The four-panel figure; returns the matplotlib ``Figure``."""
    import matplotlib.ticker

    fig, axes = plotting.pyplot().subplots(1, 4, figsize=(21, 4.2), constrained_layout=True)
    total, late, eps, fold = axes
    millions = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e6:g}M")
    thousands = matplotlib.ticker.FuncFormatter(lambda x, _: f"{x / 1e3:g}k")
    seeds = "/".join(sorted({str(run.total_return.shape[1]) for run in runs_}))
    colors = _colors(runs_)
    for run in runs_:
        _band(total, run.steps, run.total_return, colors[run.label], run.label)
    total.axhline(0, color="k", lw=0.5)
    total.xaxis.set_major_formatter(millions)
    total.set_xlabel("environment steps")
    total.set_ylabel("total return")
    total.set_title(f"Total return ({seeds} seeds, 95% CI)")
    total.legend()

    # Each run's own last ``window`` steps, from the swap that starts them: runs of different
    # lengths (one still going) are compared at the same phase of the swap cycle.
    swap = runs_[0].config["swap_period"]
    span = max(swap, window // swap * swap)
    ends = {}  # each run's window start, by label
    for ax, attr, title, methods in (
        (late, "reward_per_step", "Reward per step, last swap periods", None),
        (eps, "entropy_weight", "ε (meta-learned or scheduled)", "moving"),
    ):
        for run in runs_:
            if methods == "moving" and not _epsilon_moves(run):
                continue
            end = int(run.steps[-1]) // swap * swap
            start = max(0, end - span)
            keep = (run.starts >= start) & (run.steps <= end)
            values = getattr(run, attr)[keep]
            ends[run.label] = start
            _band(ax, run.steps[keep] - start, values, colors[run.label], run.label)
        for t in range(0, span + 1, swap):
            ax.axvline(t, color="k", ls=":", lw=0.8)
        ax.xaxis.set_major_formatter(thousands)
        ax.set_title(title)  # one legend, the left panel's: the colours are the same
    starts = set(ends.values())
    if len(starts) == 1:
        windows = f"{starts.pop() / 1e6:g}M"
    else:
        windows = ", ".join(f"{label} {start / 1e6:g}M" for label, start in ends.items())
    for ax in (late, eps):
        ax.set_xlabel(f"steps after {windows} (dotted: swaps)")
    late.set_ylabel("reward per step")
    eps.set_ylabel("ε")
    for run in runs_:
        if not _epsilon_moves(run):
            continue
        offsets, values = two_colors_analysis.folded(
            run, run.entropy_weight, width=int(run.config["log_every"])
        )
        _band(fold, offsets, values, colors[run.label], run.label)
    fold.xaxis.set_major_formatter(thousands)
    fold.set_xlabel("steps since the last swap")
    fold.set_ylabel("ε")
    fold.set_title("ε after a swap, folded over all swaps but the first")
    return fig


_SPELLED = {"λ": "lambda", "ε": "eps"}


def summary_name(label: str) -> str:
    """The file name of a run's summary: its label in lower case, λ and ε spelled out, ``_``
    for other characters, so names are ASCII (``"BMG clip 10"`` -> ``bmg_clip_10.npz``,
    ``"Q(λ) ε 0.4"`` -> ``q_lambda_eps_0_4.npz``)."""
    text = "".join(_SPELLED.get(c, c) for c in label.lower())
    stem = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return f"{stem or 'run'}.npz"


def main(argv: list[str]) -> None:
    """Parses ``argv`` (program name first), reads the run directories, writes the figures
    and prints the table.

    Raises:
      cli.UsageError: bad flags (nothing is read or written).
      runs.RunDirError: a run directory that cannot be read, or is of another experiment.
      cli.RunError: an ``--out`` that cannot be written.
    """
    CLI.parse(argv)
    run_dirs = CLI.required(_RUN_DIRS, "the run directories to plot")
    out = cli.check_output(CLI.required(_OUT, "the figures' path without extension"))
    labels = _LABELS.value or [None] * len(run_dirs)
    if len(labels) != len(run_dirs):
        raise cli.UsageError("--labels needs one label per run directory")
    window = _WINDOW.value
    summaries = _SAVE_SUMMARIES.value
    if summaries is not None:
        summaries = cli.check_output(Path(summaries) / "x.npz", flag="--save_summaries").parent
    loaded = [Run(d, label) for d, label in zip(run_dirs, labels, strict=True)]
    names = [summary_name(run.label) for run in loaded]
    if summaries is not None and len(set(names)) < len(names):
        raise cli.UsageError("--save_summaries needs a distinct label per run (see --labels)")
    fig = figure(loaded, window=window)
    written = plotting.save(fig, out)
    print(two_colors_analysis.table(loaded, window=window))
    print(f"wrote {' and '.join(written)}")
    if summaries is not None:
        for run, name in zip(loaded, names, strict=True):
            run.save_summary(summaries / name)
        print(f"wrote {len(loaded)} run summaries to {summaries}")


if __name__ == "__main__":
    CLI.run(main)
