"""The numbers of the two-colors result (paper, section 5.1), from run directories only.

Every function takes a `Run` (the metric rows of one run directory as ``[rows, seeds]``
arrays) and returns per-seed values; `table` puts them beside the public PyTorch
replication's figures. Definitions:

* **total return**: the cumulative reward of a seed at the end of its lifetime.
* **late reward per step**: reward per step over the last ``window`` (400k) steps.
* **recovery time** after a swap at step s: with p the mean reward per step over the
  ``plateau`` (20k) steps before s, the steps from s to the end of the first metric row that
  starts at or after s and whose reward per step is at least p / 2. A seed that does not get
  back by the next swap, or has no positive plateau to get back to, counts the whole swap
  period. Averaged over the swaps that fall in the last ``window`` steps.
* **ε before / after a swap**: the mean entropy weight over the ``plateau`` steps before and
  after each of those swaps.
* **collapsed**: a seed whose policy entropy is below 0.05 and whose reward per step is at
  most −0.035 over the last ``window`` steps (a deterministic policy at the step cost:
  walking into a wall).

Confidence intervals are 95% percentile bootstraps of the mean over seeds (a fixed seed, so
the same runs give the same table).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from experiments.common import runs
from experiments.common.stats import bootstrap_ci

REPLICATION = {
    "a2c": {"total_return": "≈ +650,000 (ε = 0.3)", "late": "≈ 0.15", "recovery": "—"},
    "mg": {"total_return": "≈ +870,000", "late": "—", "recovery": "≈ 35–50k"},
    "bmg": {"total_return": "≈ +960,000", "late": "≈ 0.27", "recovery": "≈ 20k"},
}
"""The PyTorch replication's figures (README figures, one seed per method, 6.4M steps); it
has no Q-learners (Luketina et al. 2022 report theirs in other units, over 10M steps)."""

LABELS = {"a2c": "A2C", "mg": "MG", "bmg": "BMG", "q": "Q(λ)", "q_bmg": "Q(λ)-BMG"}


SUMMARY_ARRAYS = ("steps", "total_return", "reward_per_step", "entropy_weight", "entropy")
"""What a run summary (`Run.save_summary`) keeps of a run directory, beside its config."""


class Run:
    """The metrics of one run directory, or of a summary of one, as arrays ``[rows, seeds]``.

    A summary (``.npz``, `save_summary`) holds the config and exactly the arrays below, so a
    figure and its table can be redrawn from files small enough to commit, without the run
    directories (a few hundred kB for 10 seeds x 6.4M steps, against megabytes of metrics
    and checkpoints).

    Attributes:
      config: the resolved config (a dict).
      method, label: the run's method and its legend label.
      steps: ``[rows]`` environment steps per seed at the end of each row.
      total_return, reward_per_step, entropy_weight, entropy: ``[rows, seeds]``.
    """

    def __init__(self, run_dir: str | os.PathLike, label: str | None = None):
        """Reads ``run_dir``: a run directory or a summary file (``.npz``).

        Raises:
          runs.RunDirError: if it is not a two-colors run directory with metric rows (a
            MinAtar or few-shot run, a truncated ``metrics.jsonl``, ...) or not a readable
            two-colors summary.
        """
        if Path(run_dir).suffix == ".npz" and not Path(run_dir).is_dir():
            self._read_summary(Path(run_dir), label)
            return
        self.config = runs.read_config(run_dir)
        self.method = self.config.get("method")
        if self.method not in LABELS or "swap_period" not in self.config:
            raise runs.RunDirError(
                f"{run_dir} is not a two-colors run directory (its method is {self.method!r}); "
                "MinAtar runs are plotted with python -m experiments.minatar.plot"
            )
        rows = runs.read_metrics(run_dir)
        if not rows:
            raise runs.RunDirError(f"{run_dir} has no metric rows yet")
        self.label = label or LABELS[self.method]
        try:
            self.steps = np.array([r["env_steps"] for r in rows])
            self.total_return = np.array([r["cumulative_reward"] for r in rows], dtype=float)
            self.entropy_weight = np.array([r["entropy_weight"] for r in rows], dtype=float)
            self.reward_per_step = np.array([r["reward_per_step"] for r in rows], dtype=float)
            self.entropy = np.array([r["entropy"] for r in rows], dtype=float)
        except (KeyError, TypeError, ValueError) as e:
            raise runs.RunDirError(
                f"{run_dir}/{runs.METRICS} does not hold two-colors rows ({type(e).__name__}: {e})"
            ) from None

    def _read_summary(self, path: Path, label: str | None) -> None:
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in SUMMARY_ARRAYS}
                self.config = json.loads(str(data["config"]))
                stored_label = str(data["label"])
        except FileNotFoundError:
            raise runs.RunDirError(f"{path}: no such summary file") from None
        except (OSError, EOFError, KeyError, ValueError, zipfile.BadZipFile) as e:
            raise runs.RunDirError(
                f"{path} is not a two-colors run summary ({type(e).__name__}: {e})"
            ) from None
        self.method = self.config.get("method")
        rows = len(arrays["steps"])
        shapes_ok = rows > 0 and all(
            a.ndim == 2 and a.shape[0] == rows for n, a in arrays.items() if n != "steps"
        )
        if self.method not in LABELS or "swap_period" not in self.config or not shapes_ok:
            raise runs.RunDirError(f"{path} is not a two-colors run summary")
        self.label = label or stored_label or LABELS[self.method]
        self.steps = arrays["steps"].astype(np.int64)
        for name in SUMMARY_ARRAYS[1:]:
            setattr(self, name, arrays[name].astype(float))

    def save_summary(self, path: str | os.PathLike) -> Path:
        """Writes the config and metric arrays to ``path`` (``.npz``, atomically); `Run`
        reads it back with the same table. Rates and ε are kept as float32 (the metrics file
        has 6-7 significant digits), total returns as float64.

        Raises:
          runs.RunDirError: if ``path`` cannot be written.
        """
        path = Path(path)
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            config=np.array(json.dumps(self.config, sort_keys=True)),
            label=np.array(self.label),
            steps=self.steps.astype(np.int64),
            total_return=self.total_return.astype(np.float64),
            **{n: getattr(self, n).astype(np.float32) for n in SUMMARY_ARRAYS[2:]},
        )
        runs.make_dir(path.parent)
        runs.atomic_write_bytes(path, buffer.getvalue())
        return path

    @property
    def starts(self) -> np.ndarray:
        """``[rows]`` environment steps at the start of each row."""
        return np.concatenate([[0], self.steps[:-1]])

    @property
    def swap_period(self) -> int:
        return int(self.config["swap_period"])

    def window_mean(self, values: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Step-weighted mean of ``values[rows, seeds]`` over the rows inside [start, stop)."""
        keep = (self.starts >= start) & (self.steps <= stop)
        if not keep.any():  # a window shorter than a row (tiny runs): no value
            return np.full(values.shape[1], np.nan)
        weights = (self.steps - self.starts)[keep]
        return (values[keep] * weights[:, None]).sum(axis=0) / weights.sum()

    def last_swaps(self, window: int) -> list[int]:
        """The swaps s in the last ``window`` steps with a whole period after them:
        end − window <= s <= end − period (and s > 0)."""
        end, period = int(self.steps[-1]), self.swap_period
        first = max(period, -(-(end - window) // period) * period)
        return list(range(first, end - period + 1, period))


def folded(run: Run, values: np.ndarray, *, width: int, skip: int = 1):
    """``values[rows, seeds]`` folded over the swap cycle: the mean over swap periods of the
    rows that start ``o`` steps after a swap, in bins of ``width`` steps, leaving out the first
    ``skip`` periods (the first is learnt from scratch, not re-learnt after a swap) and the
    rows that straddle a swap.

    Returns ``(offsets[bins], folded[bins, seeds])``, offsets at the bins' centres; a bin no
    row starts in is NaN.
    """
    period = run.swap_period
    bins = -(-period // width)
    period_of = run.starts // period
    # Rows that straddle a swap (a row need not divide the period) belong to neither side.
    keep = (period_of >= skip) & ((run.steps - 1) // period == period_of)
    index = (run.starts % period) // width
    out = np.full((bins, values.shape[1]), np.nan)
    for b in range(bins):
        rows = keep & (index == b)
        if rows.any():
            out[b] = values[rows].mean(axis=0)
    return (np.arange(bins) + 0.5) * width, out


def late_reward(run: Run, *, window: int = 400_000) -> np.ndarray:
    """Per-seed reward per step over the last ``window`` steps."""
    end = int(run.steps[-1])
    return run.window_mean(run.reward_per_step, end - window, end)


def collapsed(run: Run, *, window: int = 400_000) -> np.ndarray:
    """Per-seed: entropy < 0.05 and reward per step <= −0.035 over the last ``window`` steps."""
    end = int(run.steps[-1])
    entropy = run.window_mean(run.entropy, end - window, end)
    return (entropy < 0.05) & (late_reward(run, window=window) <= -0.035)


def recovery_steps(run: Run, *, window: int = 400_000, plateau: int = 20_000) -> np.ndarray:
    """Per-seed recovery time after a swap, averaged over the swaps in the last ``window``."""
    period = run.swap_period
    times = []
    for swap in run.last_swaps(window):
        level = run.window_mean(run.reward_per_step, swap - plateau, swap)
        after = (run.starts >= swap) & (run.steps <= swap + period)
        reached = run.reward_per_step[after] >= level / 2
        ends = run.steps[after] - swap
        first = np.where(reached.any(axis=0), ends[np.argmax(reached, axis=0)], period)
        times.append(np.where(level > 0, first, period))
    if not times:
        return np.full(run.reward_per_step.shape[1], np.nan)
    return np.mean(times, axis=0)


def epsilon_around_swaps(
    run: Run, *, window: int = 400_000, plateau: int = 20_000
) -> tuple[np.ndarray, np.ndarray]:
    """Per-seed mean ε over the ``plateau`` steps before and after the last swaps."""
    before = [np.full(run.entropy_weight.shape[1], np.nan)]
    after = list(before)
    for swap in run.last_swaps(window):
        before.append(run.window_mean(run.entropy_weight, swap - plateau, swap))
        after.append(run.window_mean(run.entropy_weight, swap, swap + plateau))
    if len(before) > 1:
        before, after = before[1:], after[1:]
    return np.mean(before, axis=0), np.mean(after, axis=0)


def _ci(values, fmt: str) -> str:
    mean, low, high = bootstrap_ci(values)
    return f"{mean:{fmt}} [{low:{fmt}}, {high:{fmt}}]"


def table(runs_: list[Run], *, window: int = 400_000, plateau: int = 20_000) -> str:
    """A Markdown table of the result beside the replication's figures (means, 95% CIs).

    Each run's figures are over its own last ``window`` steps (a run that is still going is
    measured where it is; its steps per seed say how far), cut to its lifetime; ``plateau`` is
    cut to half a swap period, so that short runs give a table too.
    """
    plateau = min(plateau, runs_[0].swap_period // 2)
    lines = [
        "| method | seeds | steps per seed | total return | (replication) "
        f"| reward/step, last {window / 1000:g}k | (replication) "
        "| recovery steps after a swap | (replication) | collapsed seeds "
        f"| ε {plateau // 1000}k before → after a swap |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    nominal = window
    for run in runs_:
        window = min(nominal, int(run.steps[-1]))
        ref = REPLICATION.get(run.method, {})
        if run.method == "a2c":
            eps = f"{run.config['entropy_weight']:g} (fixed)"
        elif run.method == "q" and not run.config.get("epsilon_decay_steps"):
            eps = f"{run.config['epsilon']:g} (fixed)"
        else:
            before, after = epsilon_around_swaps(run, window=window, plateau=plateau)
            eps = f"{before.mean():.3f} → {after.mean():.3f}"
        lines.append(
            f"| {run.label} | {run.total_return.shape[1]} | {int(run.steps[-1]):,} "
            f"| {_ci(run.total_return[-1], ',.0f')} | {ref.get('total_return', '—')} "
            f"| {_ci(late_reward(run, window=window), '.3f')} | {ref.get('late', '—')} "
            f"| {_ci(recovery_steps(run, window=window, plateau=plateau), ',.0f')} "
            f"| {ref.get('recovery', '—')} "
            f"| {int(collapsed(run, window=window).sum())} | {eps} |"
        )
    return "\n".join(lines)
