"""Plots few-shot runs: meta-test accuracy (or MSE) against training time and meta-steps.

Reads run directories written by ``python -m experiments.fewshot`` (``config.json`` and the
``eval`` records of ``metrics.jsonl``) and nothing else. Runs are grouped by task, ways and
shots (one row of two panels per group: against meta-training wall-clock seconds and against
meta-steps). A single run is one line with its 95% band over meta-test tasks; runs that differ
only in their seed are one line, their mean, with their range as the band. Writes
``<out>.png`` and ``<out>.pdf`` and prints, per group, each run's (or, with several seeds,
each setting's) final value and when it first reaches the final value of the group's MAML
run (with several seeds: the best value of MAML's mean curve), with bootstrap intervals over
seeds (`experiments.fewshot.analysis`).

Usage: ``python -m experiments.fewshot.plot --out runs/maml runs/sin_maml runs/sin_bmg ...``

Bad flags are one line on stderr with exit status 2; a run directory that cannot be read (or
is not a few-shot one), or an ``--out`` that cannot be written, one line with status 1.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

from experiments.common import cli, plotting, runs
from experiments.common.guard import FAULT
from experiments.fewshot import analysis
from experiments.fewshot import run_dir as run_dir_lib

CLI = cli.Cli("experiments.fewshot.plot", __doc__, positional="run directories")
_OUT = CLI.string("out", None, "Output path without extension (.png and .pdf).")


class Run(dict):
    """A run directory's config (keys of `Config`) plus ``evals`` and ``path``."""


def _ci(record: dict) -> float:
    """The 95% half-width of an evaluation row; 0 where it is undefined (one task: ``None``,
    or NaN in rows written before metric rows became strict JSON)."""
    ci = record.get("ci95")
    return 0.0 if ci is None or math.isnan(ci) else float(ci)


def load_run(path: str) -> Run:
    """Reads ``config.json`` and the evaluation records of ``metrics.jsonl``.

    Raises:
      runs.RunDirError: if ``path`` is not a few-shot run directory with evaluations.
    """
    run = Run(runs.read_config(path))
    if "task" not in run or "shots" not in run:
        raise runs.RunDirError(f"{path} is not a run directory of experiments.fewshot")
    run["evals"] = run_dir_lib.read_metrics(path, "eval")
    run["path"] = path
    run["diverged"] = os.path.exists(os.path.join(path, FAULT))
    if not run["evals"]:
        raise runs.RunDirError(f"{path} holds no evaluation records yet")
    return run


def group_name(run: Run) -> str:
    if run["task"] == "sinusoid":
        return f"sinusoid {run['shots']}-shot"
    return f"{run['task']} {run['ways']}-way {run['shots']}-shot"


def label(run: Run, *, seed: bool = True) -> str:
    text = f"{run['method'].upper()} K={run['num_inner_steps']}"
    if run["method"] == "bmg":
        text += f" L={run['bootstrap_steps']} {run['matching']}"
    if run.get("meta_max_grad_norm"):
        text += f" clip {run['meta_max_grad_norm']:g}"
    return text + (f" (seed {run['seed']})" if seed else "")


def seeds_text(runs_: list[Run]) -> str:
    """``"3 seeds"``, or ``"3 seeds, 1 diverged"`` when runs stopped on non-finite values
    (their curves end there, and a setting's mean curve at the first of them)."""
    diverged = sum(bool(run.get("diverged")) for run in runs_)
    count = f"{len(runs_)} seed" + ("s" if len(runs_) != 1 else "")
    return count + (f", {diverged} diverged" if diverged else "")


def settings(group: list[Run]) -> dict[str, list[Run]]:
    """The group's runs by setting: runs whose labels differ only in the seed."""
    out: dict[str, list[Run]] = {}
    for run in group:
        out.setdefault(label(run, seed=False), []).append(run)
    return out


def time_to_reach(run: Run, target: float) -> float | None:
    """The first ``train_time_s`` at which the run's mean is at least as good as ``target``."""
    higher_is_better = run["evals"][0]["metric"] == "accuracy"
    for r in run["evals"]:
        if (r["mean"] >= target) if higher_is_better else (r["mean"] <= target):
            return r["train_time_s"]
    return None


def summary(groups: dict[str, list[Run]]) -> list[str]:
    """Lines comparing every run with the final value of its group's MAML run; for a group
    with several seeds per setting, one line per setting against the best value of MAML's
    mean curve (`analysis.reach`)."""
    lines = []
    for name, group in groups.items():
        by_setting = settings(group)
        maml = [key for key in by_setting if key.startswith("MAML")]
        if maml and any(len(runs) > 1 for runs in by_setting.values()):
            reference = analysis.best_setting(by_setting, maml)
            lines.append(f"{name} | reference: {reference}, the MAML setting with the best curve")
            for key, r in analysis.reach(by_setting, reference).items():
                seconds = "never" if r["seconds"] != r["seconds"] else f"{r['seconds']:.1f}s"
                lines.append(
                    f"{name} | {key} | {seeds_text(by_setting[key])} | final {r['final']:.4f} "
                    f"{_ci_text(r['final_ci'], '.4f')} | reaches MAML's best "
                    f"{r['target']:.4f} at {seconds} {_ci_text(r['seconds_ci'], '.1f')}, "
                    f"step {r['steps']:.0f} {_ci_text(r['steps_ci'], '.0f')} | time / MAML's "
                    f"{r['ratio']:.2f} {_ci_text(r['ratio_ci'], '.2f')} | reached in "
                    f"{100 * r['reached']:.0f}% of resamples"
                )
            continue
        target = group_target(group)
        for run in group:
            final = run["evals"][-1]
            line = (
                f"{name} | {label(run)} | steps {final['step']}"
                f" | train {final['train_time_s']:.1f}s"
                f" | final {final['metric']} {final['mean']:.4f} ± {_ci(final):.4f}"
            )
            if target is not None:
                reach = time_to_reach(run, target)
                line += " | reaches MAML final at " + (
                    "never" if reach is None else f"{reach:.1f}s"
                )
            lines.append(line)
    return lines


def _ci_text(low_high, fmt: str) -> str:
    """``[low, high]``, an infinite end (resamples that never reach) as ``never``."""
    return "[" + ", ".join("never" if v == math.inf else format(v, fmt) for v in low_high) + "]"


def group_target(group: list[Run]) -> float | None:
    """The final value of the group's first MAML run (one seed per setting)."""
    maml_runs = [r for r in group if r["method"] == "maml"]
    return maml_runs[0]["evals"][-1]["mean"] if maml_runs else None


def plot(groups: dict[str, list[Run]], out: str) -> list[str]:
    """Draws the figure; returns the written paths. A setting with several seeds is one line,
    the mean over its seeds, with their range as the band; a single run is its own line with
    the 95% band over meta-test tasks."""
    from matplotlib.ticker import MaxNLocator

    fig, axes = plotting.pyplot().subplots(
        len(groups), 2, figsize=(10, 3.4 * len(groups)), squeeze=False
    )
    for row, (name, group) in zip(axes, groups.items(), strict=True):
        for key, runs_ in settings(group).items():
            if len(runs_) > 1:
                steps, seconds, values = analysis.curve(runs_)
                mean, low, high = values.mean(axis=1), values.min(axis=1), values.max(axis=1)
                xs = {"train_time_s": seconds, "step": steps}
                text = f"{key} ({seeds_text(runs_)})"
                for ax, axis in zip(row, ("train_time_s", "step"), strict=True):
                    (line,) = ax.plot(xs[axis], mean, label=text)
                    ax.fill_between(xs[axis], low, high, color=line.get_color(), alpha=0.2)
                continue
            for run in runs_:
                evals = run["evals"]
                mean = [r["mean"] for r in evals]
                ci = [_ci(r) for r in evals]
                for ax, axis in zip(row, ("train_time_s", "step"), strict=True):
                    x = [r[axis] for r in evals]
                    (line,) = ax.plot(x, mean, label=label(run))
                    low = [m - c for m, c in zip(mean, ci, strict=True)]
                    high = [m + c for m, c in zip(mean, ci, strict=True)]
                    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2)
        metric = group[0]["evals"][0]["metric"]
        ylabel = "meta-test accuracy" if metric == "accuracy" else "meta-test MSE"
        row[0].set_xlabel("meta-training wall-clock (s, excl. compile and eval)")
        row[1].set_xlabel("meta-steps")
        row[1].xaxis.set_major_locator(MaxNLocator(nbins=5))
        for ax in row:
            ax.set_ylabel(ylabel)
            ax.set_title(name)
            ax.grid(alpha=0.3)
            if metric == "mse":
                ax.set_yscale("log")
        row[1].legend(fontsize=8)
    fig.tight_layout()
    return plotting.save(fig, out, dpi=120)


def main(argv: Sequence[str]) -> dict[str, Any]:
    """Parses ``argv`` (program name first, then flags and run directories), writes the
    figure and prints the summary.

    Raises:
      cli.UsageError: bad flags, no run directory (nothing is read or written).
      runs.RunDirError: a run directory that cannot be read or is not a few-shot one.
      cli.RunError: an ``--out`` that cannot be written.
    """
    run_dirs = CLI.parse(argv)
    if not run_dirs:
        raise cli.UsageError("give one or more run directories of experiments.fewshot")
    out = cli.check_output(CLI.required(_OUT, "the figure's path without extension"))
    groups: dict[str, list[Run]] = {}
    for path in run_dirs:
        run = load_run(path)
        groups.setdefault(group_name(run), []).append(run)
    lines = summary(groups)
    print("\n".join(lines))
    paths = plot(groups, str(out))
    print("wrote", ", ".join(paths))
    return {"paths": paths, "summary": lines}


if __name__ == "__main__":
    CLI.run(main)
