"""Run directories: resolved config, metrics as JSON lines, checkpoints, resume.

A run directory holds

* ``config.json``: the resolved config of the run (written once; a resumed run must match it);
* ``metrics.jsonl``: one JSON object a line, appended as the run goes;
* ``checkpoint.npz``: the latest training state (the leaves of a pytree) and a ``progress``
  counter, written atomically (a crash mid-write leaves the previous checkpoint intact);
* figures, written by the plotting scripts.

Resuming loads the checkpoint and drops the metric lines written after it, so a resumed run
writes exactly the lines an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.npz"


class RunDirError(ValueError):
    """A run directory that cannot be used as asked (another config, a corrupt file)."""


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def prepare(run_dir: str | os.PathLike, config: Any) -> Path:
    """Creates ``run_dir`` (or reopens it) and writes or checks ``config.json``.

    Args:
      run_dir: the run directory.
      config: a dataclass; its ``asdict`` is the resolved config.

    Returns:
      The run directory as a `Path`.

    Raises:
      RunDirError: if the directory already holds a run with a different config.
    """
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    resolved = json.loads(json.dumps(dataclasses.asdict(config)))
    config_path = path / CONFIG
    if config_path.exists():
        existing = json.loads(config_path.read_text())
        if existing != resolved:
            changed = sorted(
                k for k in set(existing) | set(resolved) if existing.get(k) != resolved.get(k)
            )
            raise RunDirError(
                f"{path} holds a run with another config (differs in {changed}); "
                "pass a new --run_dir or the same flags to resume it"
            )
    else:
        _atomic_write_bytes(config_path, (json.dumps(resolved, indent=2) + "\n").encode())
    return path


def lock(run_dir: Path):
    """Takes the run directory's lock for this process, or fails at once.

    The lock is an ``fcntl`` lock on ``run_dir/.lock``: the operating system releases it when
    the process ends, however it ends, so a crashed run never leaves a stale lock. Keep the
    returned file open while writing to the run directory.

    Raises:
      RunDirError: if another process holds the lock (is writing to this run).
    """
    handle = open(run_dir / ".lock", "w")  # noqa: SIM115  (held open on purpose)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise RunDirError(
            f"another process is writing to {run_dir}; wait for it or stop it"
        ) from None
    return handle


def read_config(run_dir: str | os.PathLike) -> dict:
    """The resolved config of a run directory."""
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise RunDirError(f"{run_dir} is not a run directory: it has no {CONFIG}")
    return json.loads(path.read_text())


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """All metric rows of a run directory, in order."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise RunDirError(f"{run_dir} has no {METRICS}")
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def append_metrics(run_dir: Path, rows: list[dict]) -> None:
    """Appends rows to ``metrics.jsonl`` and flushes them to disk."""
    with open(run_dir / METRICS, "a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def truncate_metrics(run_dir: Path, num_rows: int) -> None:
    """Keeps the first ``num_rows`` rows of ``metrics.jsonl`` (those of the checkpoint)."""
    path = run_dir / METRICS
    if not path.exists():
        if num_rows:
            raise RunDirError(f"{path} is missing but the checkpoint has {num_rows} rows")
        return
    with open(path) as f:
        lines = [line for line in f if line.strip()]
    if len(lines) < num_rows:
        raise RunDirError(f"{path} has {len(lines)} rows, the checkpoint expects {num_rows}")
    _atomic_write_bytes(path, "".join(lines[:num_rows]).encode())


def save_checkpoint(run_dir: Path, state: Any, *, progress: int, metric_rows: int) -> None:
    """Saves the leaves of ``state`` and two counters, atomically.

    Args:
      run_dir: the run directory.
      state: a pytree of arrays (gathered to the host).
      progress: how far the run is (the caller's unit, e.g. updates done).
      metric_rows: how many rows of ``metrics.jsonl`` belong to this checkpoint.
    """
    leaves = [np.asarray(leaf) for leaf in jax.tree.leaves(jax.device_get(state))]
    arrays = {f"leaf_{i:05d}": leaf for i, leaf in enumerate(leaves)}
    tmp = run_dir / (CHECKPOINT + ".tmp.npz")
    np.savez(tmp, progress=np.int64(progress), metric_rows=np.int64(metric_rows), **arrays)
    os.replace(tmp, run_dir / CHECKPOINT)


def load_checkpoint(run_dir: Path, template: Any) -> tuple[Any, int, int] | None:
    """Loads a checkpoint into the structure of ``template``.

    Args:
      run_dir: the run directory.
      template: a pytree of arrays or `jax.ShapeDtypeStruct` (e.g. from `jax.eval_shape`)
        with the structure, shapes and dtypes of the saved state.

    Returns:
      ``(state, progress, metric_rows)``, or ``None`` if there is no checkpoint.

    Raises:
      RunDirError: if the checkpoint does not fit ``template``.
    """
    path = run_dir / CHECKPOINT
    if not path.exists():
        return None
    leaves, treedef = jax.tree.flatten(template)
    with np.load(path) as data:
        saved = [data[f"leaf_{i:05d}"] for i in range(len(leaves)) if f"leaf_{i:05d}" in data]
        progress, rows = int(data["progress"]), int(data["metric_rows"])
        extra = sum(1 for k in data.files if k.startswith("leaf_")) - len(leaves)
    if len(saved) != len(leaves) or extra:
        raise RunDirError(f"{path} does not hold a state of this run's structure")
    for i, (s, t) in enumerate(zip(saved, leaves, strict=True)):
        if s.shape != tuple(t.shape) or s.dtype != t.dtype:
            raise RunDirError(
                f"{path}: leaf {i} is {s.dtype}{list(s.shape)}, expected {t.dtype}{list(t.shape)}"
            )
    return jax.tree.unflatten(treedef, saved), progress, rows


def train_rows(
    run_dir: Path,
    *,
    fresh: Callable[[], Any],
    template: Any,
    step: Callable[[Any, int], tuple[Any, dict]],
    num_rows: int,
    checkpoint_every: int,
    steps_per_row: int,
    place: Callable[[Any], Any] = lambda carry: carry,
    progress: Callable[[int, int, float | None], None] | None = None,
    stop_after_rows: int | None = None,
) -> list[dict]:
    """The chunked training loop of a run directory: resume, one metric row per chunk,
    checkpoints.

    Loads the checkpoint (or starts from ``fresh()``), drops the metric rows written after
    it, then calls ``step(carry, row) -> (carry, record)`` for each remaining row, appends
    each record at once (with its ``seconds``) and saves ``carry`` every
    ``checkpoint_every`` rows and after the last one, so a resumed run writes exactly the
    rows of an uninterrupted one.

    Args:
      run_dir: a prepared (and locked) run directory.
      fresh: the initial carry of a new run.
      template: the carry's structure (``jax.eval_shape`` of ``fresh``) for the checkpoint.
      step: one chunk of training and its metric row.
      num_rows: rows of the whole run; a finished run is left as it is.
      checkpoint_every: rows between two checkpoints.
      steps_per_row: environment steps of a row, over all seeds (for the rate).
      place: puts a (restored or fresh) carry on its devices.
      progress: called after each row with ``(rows done, num_rows, steps/s or None)``; the
        rate is ``None`` for a call's first row, whose time may include compilation.
      stop_after_rows: stop (after a checkpoint) once this many rows exist.

    Returns:
      All metric rows of the run.
    """
    restored = load_checkpoint(run_dir, template)
    if restored is None:
        carry, rows_done = fresh(), 0
    else:
        carry, _, rows_done = restored
    truncate_metrics(run_dir, rows_done)
    carry = place(carry)
    last = min(num_rows, stop_after_rows or num_rows)
    for row in range(rows_done, last):
        start = time.perf_counter()
        carry, record = step(carry, row)
        elapsed = time.perf_counter() - start
        record["seconds"] = round(elapsed, 4)
        append_metrics(run_dir, [record])
        done = row + 1
        if done % checkpoint_every == 0 or done == last:
            save_checkpoint(run_dir, carry, progress=done, metric_rows=done)
        if progress is not None:
            progress(done, num_rows, None if row == rows_done else steps_per_row / elapsed)
    return read_metrics(run_dir)
