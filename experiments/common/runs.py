"""Run directories: resolved config, metrics as JSON lines, checkpoints, resume.

A run directory holds

* ``config.json``: the resolved config of the run (written once; a resumed run must match it);
* ``metrics.jsonl``: one JSON object a line, appended as the run goes;
* ``checkpoints/<progress>/``: the two latest training states (the leaves of a pytree) with
  their ``progress`` and metric-row counters, on orbax (`experiments.common.checkpoints`):
  written atomically, and a damaged newest one is skipped for the one before it;
* ``fault.json``: only after a run diverged (`check_finite`, from `experiments.common.guard`):
  the row, seeds and quantity that went NaN or infinite; a run directory holding it refuses
  to resume (`check_no_fault`);
* figures, written by the plotting scripts.

Resuming loads the checkpoint and drops the metric lines written after it, so a resumed run
writes exactly the lines an uninterrupted one would. A row whose state or metrics are not
finite is neither written nor checkpointed: the last good checkpoint survives a divergence.

Reopening a finished run writes nothing (it may sit in a read-only directory). Whatever
cannot be used — a path that is a file, a directory that cannot be written for a run that is
not finished, a corrupt ``config.json``, a checkpoint that cannot be read or is not of this
run, a metric line covered by the checkpoint that is not JSON (a truncated last line) — is a
`RunDirError` with a one-line message naming the file.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from experiments.common import checkpoints, distributed
from experiments.common.guard import (  # noqa: F401  (part of this module's API)
    FAULT,
    NonFiniteError,
    check_finite,
    check_no_fault,
)
from experiments.common.run_files import (  # noqa: F401  (part of this module's API)
    RunDirError,
    atomic_write_bytes,
    lock,
    make_dir,
    nonblank_lines,
    parse_lines,
    read_json,
    read_jsonl,
    read_text,
    require_writable,
)

CONFIG = "config.json"
METRICS = "metrics.jsonl"
CHECKPOINT = checkpoints.DIR


def _resolved(config: Any) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config)))


def check_config(run_dir: str | os.PathLike, config: Any) -> bool:
    """Whether ``run_dir`` holds a ``config.json``; reads it and writes nothing.

    A setting that the stored config lacks (added to the program later) matches if it has
    its default value.

    Raises:
      RunDirError: if that config is unreadable or not ``config``'s.
    """
    path = Path(run_dir)
    if path.exists() and not path.is_dir():
        raise RunDirError(f"{path} is a file, not a run directory")
    config_path = path / CONFIG
    if not config_path.exists():
        return False
    existing = read_json(config_path, "a run's config")
    resolved = _resolved(config)
    # A setting added after the run was written, at its default (which keeps the old
    # behaviour), is not a change: the run resumes.
    defaults = {
        f.name: json.loads(json.dumps(f.default))
        for f in dataclasses.fields(config)
        if f.default is not dataclasses.MISSING
    }
    for name in set(resolved) - set(existing):
        if name in defaults and resolved[name] == defaults[name]:
            existing[name] = resolved[name]
    if existing != resolved:
        changed = sorted(
            k for k in set(existing) | set(resolved) if existing.get(k) != resolved.get(k)
        )
        raise RunDirError(
            f"{path} holds a run with another config (differs in {changed}); "
            "pass a new --run_dir or the same flags to resume it"
        )
    return True


def prepare(run_dir: str | os.PathLike, config: Any) -> Path:
    """Creates ``run_dir`` (or reopens it) and writes or checks ``config.json``.

    Args:
      run_dir: the run directory.
      config: a dataclass; its ``asdict`` is the resolved config.

    Returns:
      The run directory as a `Path`.

    Raises:
      RunDirError: if the directory is a file or cannot be written, or already holds a run
        with a different (or an unreadable) config.
    """
    path = make_dir(run_dir)
    if not check_config(path, config):
        atomic_write_bytes(path / CONFIG, (json.dumps(_resolved(config), indent=2) + "\n").encode())
    return path


def read_config(run_dir: str | os.PathLike) -> dict:
    """The resolved config of a run directory."""
    path = Path(run_dir) / CONFIG
    if not Path(run_dir).is_dir():
        raise RunDirError(f"{run_dir} is not a run directory")
    if not path.exists():
        raise RunDirError(f"{run_dir} is not a run directory: it has no {CONFIG}")
    return read_json(path, "a run's config")


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    """All metric rows of a run directory, in order."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        raise RunDirError(f"{run_dir} has no {METRICS}")
    return read_jsonl(path)


def append_metrics(run_dir: Path, rows: list[dict]) -> None:
    """Appends rows to ``metrics.jsonl`` and flushes them to disk.

    Raises:
      ValueError: if a row holds a NaN or infinite float (strict JSON has no such tokens).
    """
    text = "".join(json.dumps(row, allow_nan=False) + "\n" for row in rows)  # all or none
    with open(run_dir / METRICS, "a") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def truncate_metrics(run_dir: Path, num_rows: int) -> None:
    """Keeps the first ``num_rows`` rows of ``metrics.jsonl`` (those of the checkpoint).

    The file is rewritten only if that changes it (a finished run is left as it is).

    Raises:
      RunDirError: if it has fewer rows, or one of them is not a JSON object.
    """
    path = run_dir / METRICS
    if not path.exists():
        if num_rows:
            raise RunDirError(f"{path} is missing but the checkpoint has {num_rows} rows")
        return
    text = read_text(path)
    lines = nonblank_lines(text)
    if len(lines) < num_rows:
        raise RunDirError(f"{path} has {len(lines)} rows, the checkpoint expects {num_rows}")
    parse_lines(path, lines[:num_rows])  # rows after them (a crash's) may be anything
    kept = "".join(line + "\n" for line in lines[:num_rows])
    if kept != text:
        atomic_write_bytes(path, kept.encode())


def save_checkpoint(run_dir: Path, state: Any, *, progress: int, metric_rows: int) -> None:
    """Saves ``state`` and two counters as checkpoint ``progress`` (see
    `experiments.common.checkpoints`: atomic, the last two kept).

    Args:
      run_dir: the run directory.
      state: a pytree of arrays.
      progress: how far the run is (the caller's unit, e.g. updates done).
      metric_rows: how many rows of ``metrics.jsonl`` belong to this checkpoint.
    """
    checkpoints.save(run_dir, progress, state, {"progress": progress, "metric_rows": metric_rows})


def load_checkpoint(run_dir: Path, template: Any) -> tuple[Any, int, int] | None:
    """Loads the newest readable checkpoint into the structure of ``template``.

    Args:
      run_dir: the run directory.
      template: a pytree of arrays or `jax.ShapeDtypeStruct` (e.g. from `jax.eval_shape`)
        with the structure, shapes and dtypes of the saved state.

    Returns:
      ``(state, progress, metric_rows)``, or ``None`` if there is no checkpoint.

    Raises:
      RunDirError: if no checkpoint can be read or the one read does not fit ``template``.
    """
    checkpoint = checkpoints.load(run_dir, ("progress", "metric_rows"))
    if checkpoint is None:
        return None
    state = checkpoints.fit(checkpoint, template)
    return state, int(checkpoint.meta["progress"]), int(checkpoint.meta["metric_rows"])


def _position(record: dict) -> str | None:
    for key, name in (("env_steps", "env steps"), ("frames", "frames")):
        if isinstance(record.get(key), int):
            return f"{name} {record[key]:,}"
    return None


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
    on_row: Callable[[dict], None] | None = None,
    seed: int | None = None,
) -> list[dict]:
    """The chunked training loop of a run directory: resume, one metric row per chunk,
    checkpoints.

    Loads the checkpoint (or starts from ``fresh()``), drops the metric rows written after
    it, then calls ``step(carry, row) -> (carry, record)`` for each remaining row, appends
    each record at once (with its ``seconds``) and saves ``carry`` every
    ``checkpoint_every`` rows and after the last one, so a resumed run writes exactly the
    rows of an uninterrupted one. Each row is first checked by `check_finite`: a row whose
    metrics or state are not finite is not written, its state is not saved, and the run
    stops with `NonFiniteError` (and refuses to resume, see `check_no_fault`).

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
      on_row: called with each record once it is written (say, a TensorBoard writer).
      seed: for a run of one seed whose carry has no population axis: that seed (named in a
        non-finite error); None for a population carry (leading axis: the seeds).

    Returns:
      All metric rows of the run.

    Raises:
      NonFiniteError: if a row went non-finite (now or in an earlier call).
    """
    check_no_fault(run_dir)
    restored = load_checkpoint(run_dir, template)
    if restored is None:
        carry, rows_done = fresh(), 0
    else:
        carry, _, rows_done = restored
    last = min(num_rows, stop_after_rows or num_rows)
    writer = distributed.is_writer()  # the others train and checkpoint, but write no file
    if writer and rows_done < last:
        require_writable(run_dir, (METRICS,))
    if writer:
        truncate_metrics(run_dir, rows_done)
    if rows_done >= last:  # finished: nothing to do, nothing is written
        return read_metrics(run_dir)
    carry = place(carry)
    saved = rows_done  # the row of the checkpoint on disk
    for row in range(rows_done, last):
        start = time.perf_counter()
        carry, record = step(carry, row)
        elapsed = time.perf_counter() - start
        record["seconds"] = round(elapsed, 4)
        done = row + 1
        check_finite(
            carry,
            record,
            row=done,
            at=_position(record),
            run_dir=run_dir if writer else None,
            checkpoint_row=saved,
            seed=seed,
        )
        if writer:
            append_metrics(run_dir, [record])
        if on_row is not None:
            on_row(record)
        if done % checkpoint_every == 0 or done == last:
            save_checkpoint(run_dir, carry, progress=done, metric_rows=done)
            saved = done
        if progress is not None:
            progress(done, num_rows, None if row == rows_done else steps_per_row / elapsed)
    distributed.barrier("metrics written")  # the writer's last row is on disk for all
    return read_metrics(run_dir)
