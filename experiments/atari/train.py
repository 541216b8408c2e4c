"""One seed's real-ALE run in a run directory: metric rows, checkpoints, resume, the guard.

`train(config, run_dir)` drives `experiments.atari.pipeline.Pipeline` through
`experiments.common.runs.train_rows`: a metric row is ``updates_per_row`` meta-steps
(``log_every`` frames), checkpoints every ``checkpoint_every`` rows hold the `TrainState`.

What resumes exactly: the learner (parameters, inner RMSProp state and the rollout its next
inner step learns from), the meta-parameters, the meta-optimizer state and the metric rows.
What does not: the emulators and the actors. A resumed process starts new emulators (seeds
from ``(seed, row resumed at, actor)``) and new policy keys, so the episodes that were running
at the interruption are lost and the games after it differ from an uninterrupted run's; and
the policy lag restarts at zero. A run of one process, never interrupted, is the same run
for the same seed every time.

Several processes (``--distributed``, one per host): each runs its own actors with
``num_envs`` emulators per actor and one learner spans them all (`Pipeline`); process 0
writes the run directory (config, metric rows, fault file), every process takes part in the
checkpoints and reads them back on resume, so the run directory must be on a file system
all of them see. ``total_frames`` and the rows' ``frames`` count every process's frames, a
row is ``log_every`` frames of each process, and its scores are every process's games. A
run resumes with the number of processes it was started with (the checkpoint's batch
differs otherwise, and is refused).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.atari.config import AleConfig
from experiments.atari.pipeline import Pipeline
from experiments.common import distributed, runs
from experiments.envs import ale


def metric_row(
    config: AleConfig,
    reports: list[dict[str, Any]],
    frames: int,
    returns: list[float] | None = None,
) -> dict[str, Any]:
    """A metric row from the row's meta-step reports (``returns``: the raw scores of the
    games that ended in the row, if not those of the reports).

    Keys: ``frames`` (the run's frames so far), ``episode_returns`` (raw game scores that
    ended in the row), ``episode_return`` and ``human_normalised`` (their mean, ``None`` if no
    game ended), ``episodes``, ``lag_max``, ``meta_loss``, ``meta_grad_norm`` and
    ``entropy`` (the main head's policy entropy in the updates; means over the row) and the
    hyperparameters of the row's last meta-step (one value per head).
    """
    if returns is None:
        returns = [r for report in reports for r in report["episode_returns"]]
    mean = float(np.mean(returns)) if returns else None
    last = reports[-1]
    hypers = {k: v for k, v in last.items() if k not in ("episode_returns", "actor", "lag")}
    hypers.pop("meta_loss")
    hypers.pop("entropy")
    hypers.pop("meta_grad_norm")
    return {
        "frames": frames,
        "episodes": len(returns),
        "episode_return": mean,
        "human_normalised": None if mean is None else ale.human_normalised(config.game, mean),
        "episode_returns": [round(r, 1) for r in returns],
        "lag_max": max(report["lag"] for report in reports),
        "meta_loss": float(np.mean([report["meta_loss"] for report in reports])),
        "meta_grad_norm": float(np.mean([report["meta_grad_norm"] for report in reports])),
        "entropy": float(np.mean([report["entropy"] for report in reports])),
        **hypers,
    }


def train(
    config: AleConfig,
    run_dir: str | Path,
    *,
    progress: Callable[[int, int, float | None], None] | None = None,
    stop_after_rows: int | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Trains (or resumes) ``config`` in ``run_dir``; returns all metric rows.

    ``progress`` gets the frames/s of each row. A finished run is left as it is.

    Raises:
      ConfigError: the game's ROM is missing.
      runs.RunDirError: ``run_dir`` cannot be used.
      runs.NonFiniteError: the run went NaN or infinite (now, or earlier in ``run_dir``).
    """
    pipe = Pipeline(config)  # a bad game or a missing ROM fails before anything is written
    path = runs.make_dir(run_dir)
    opened = started = False
    processes = jax.process_count()
    frames_per_row = config.frames_per_row * processes  # every process's actors
    num_rows = -(-config.total_frames // frames_per_row)

    def fresh():
        nonlocal opened
        pipe.open(0)
        opened = True
        return pipe.fresh()

    def step(state, row):
        nonlocal opened, started
        if not opened:  # resumed at `row`
            pipe.open(row)
            opened = True
        if not started:
            pipe.start(state)
            started = True
        reports = []
        for _ in range(config.updates_per_row):
            state, report = pipe.meta_step(state, check=False)
            reports.append(report)
            if not np.isfinite(report["meta_loss"]):
                break  # the guard stops the run on this row
        if row == 0:
            reports[0]["episode_returns"] = pipe.first_returns + reports[0]["episode_returns"]
        # Every process's games (in a one-process run, this one's).
        returns = distributed.gather_values([r for x in reports for r in x["episode_returns"]])
        return state, metric_row(config, reports, (row + 1) * frames_per_row, returns)

    writer = distributed.is_writer()  # in a multi-process run, process 0 writes the files
    with runs.lock(path) if writer else contextlib.nullcontext():
        if writer:
            runs.prepare(path, config)
        distributed.barrier("run directory prepared")
        if not writer:
            runs.check_config(path, config)
        try:
            return runs.train_rows(
                path,
                fresh=fresh,
                template=pipe.template(),
                step=step,
                num_rows=num_rows,
                checkpoint_every=config.checkpoint_every,
                place=pipe.place_state,
                steps_per_row=frames_per_row,
                progress=progress,
                stop_after_rows=stop_after_rows,
                on_row=on_row,
                seed=config.seed,
            )
        finally:
            pipe.close()
