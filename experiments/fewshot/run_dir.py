"""The run directory of a few-shot run: resolved config, metrics and checkpoints.

* ``config.json``: the resolved `Config`; a rerun in the same directory must match it except
  for ``meta_steps``.
* ``metrics.jsonl``: one JSON record per line (see `experiments.fewshot.train`).
* ``checkpoints/<step>/``: the leaves of (meta-parameters, optimizer state, PRNG key data) with
  the step and training time, written atomically after every chunk, the last two kept
  (`experiments.common.checkpoints`).
* ``fault.json``: only if the run went NaN or infinite (`experiments.common.runs.check_finite`); the
  directory then refuses to resume (`experiments.common.runs.check_no_fault`) until it is deleted.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from experiments.common import checkpoints, runs
from experiments.fewshot.config import Config


def config_json(config: Config) -> dict[str, Any]:
    """The config as JSON-compatible values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def save_checkpoint(run_dir: str | os.PathLike, tree, *, step: int, train_time: float) -> None:
    """Saves ``tree`` as checkpoint ``step`` (atomic, the last two kept)."""
    checkpoints.save(run_dir, step, tree, {"step": step, "train_time": train_time})


class Checkpoint(NamedTuple):
    """A checkpoint as read from disk, with its meta-step and training time."""

    stored: checkpoints.Checkpoint
    step: int
    train_time: float


def read_checkpoint(run_dir: str | os.PathLike) -> Checkpoint | None:
    """Reads the newest readable checkpoint (before anything is compiled: a damaged run
    directory fails at once), or ``None`` if there is none.

    Raises:
      runs.RunDirError: if no checkpoint can be read, or it is not a few-shot one.
    """
    stored = checkpoints.load(run_dir, ("step", "train_time"))
    if stored is None:
        return None
    return Checkpoint(stored, int(stored.meta["step"]), float(stored.meta["train_time"]))


def restore(checkpoint: Checkpoint, template):
    """The checkpoint's state in the structure of ``template``.

    Raises:
      runs.RunDirError: if its leaves do not fit ``template`` (a checkpoint of another run).
    """
    return jax.tree.map(jnp.asarray, checkpoints.fit(checkpoint.stored, template))


def check_stored(config: Config, run_dir: str) -> bool:
    """Checks a stored run against ``config`` (writing nothing); returns whether there is a
    checkpoint to resume.

    Raises:
      runs.RunDirError: if the stored config is unreadable, or the checkpoint's run has
        other settings (only ``meta_steps`` may differ).
    """
    config_path = Path(run_dir) / "config.json"
    has_checkpoint = checkpoints.exists(run_dir)
    if has_checkpoint and config_path.exists():
        stored = runs.read_json(config_path, "a run's config")
        current = config_json(config)
        changed = sorted(k for k in current if k != "meta_steps" and stored.get(k) != current[k])
        if changed:
            raise runs.RunDirError(
                f"{run_dir} holds a run with different settings ({', '.join(changed)}); only "
                "meta_steps may change on resume: use a new --run_dir"
            )
    return has_checkpoint


def write_config(config: Config, run_dir: str) -> None:
    """Writes ``config.json`` unless it already holds ``config`` (so a finished run is not
    rewritten)."""
    config_path = Path(run_dir) / "config.json"
    current = config_json(config)
    if not config_path.exists() or runs.read_json(config_path, "a run's config") != current:
        runs.atomic_write_bytes(config_path, json.dumps(current, indent=2).encode())


def truncate_metrics(path: str, step: int) -> None:
    """Drops records after ``step`` (written after the last checkpoint of a crashed run)
    and the compile records (a resumed run writes its own).

    Raises:
      runs.RunDirError: if a line is not a JSON record.
    """
    path = Path(path)
    if not path.exists():
        return
    text = runs.read_text(path)
    lines = runs.nonblank_lines(text)
    records = _records(path, lines)
    kept = "".join(
        line + "\n"
        for line, r in zip(lines, records, strict=True)
        if r.get("step", 0) <= step and r["kind"] != "compile"
    )
    if kept != text:
        runs.atomic_write_bytes(path, kept.encode())


def _records(path: Path, lines: list[str]) -> list[dict[str, Any]]:
    records = runs.parse_lines(path, lines)
    for number, record in enumerate(records, 1):
        if "kind" not in record:
            raise runs.RunDirError(f"{path}: line {number} is not a few-shot record (no kind)")
    return records


def read_metrics(run_dir: str, kind: str | None = None) -> list[dict[str, Any]]:
    """The records of ``metrics.jsonl`` (of one ``kind`` if given).

    Raises:
      runs.RunDirError: if the file is missing, or a line is not a JSON record.
    """
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        raise runs.RunDirError(f"{run_dir} has no metrics.jsonl")
    records = _records(path, runs.nonblank_lines(runs.read_text(path)))
    return [r for r in records if kind is None or r["kind"] == kind]
