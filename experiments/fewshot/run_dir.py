"""The run directory of a few-shot run: resolved config, metrics and checkpoints.

* ``config.json``: the resolved `Config`; a rerun in the same directory must match it except
  for ``meta_steps``.
* ``metrics.jsonl``: one JSON record per line (see `experiments.fewshot.train`).
* ``checkpoint.npz``: the leaves of (meta-parameters, optimizer state, PRNG key data) with the
  step and training time, replaced atomically after every chunk.
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
import numpy as np

from experiments.common import runs
from experiments.fewshot.config import Config


def config_json(config: Config) -> dict[str, Any]:
    """The config as JSON-compatible values (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


def save_checkpoint(path: str, tree, *, step: int, train_time: float) -> None:
    leaves = {f"leaf_{i}": np.asarray(x) for i, x in enumerate(jax.tree.leaves(tree))}
    tmp = path + ".tmp.npz"
    np.savez(tmp, step=step, train_time=train_time, **leaves)
    os.replace(tmp, path)  # atomic: a crash leaves the previous checkpoint intact


class Checkpoint(NamedTuple):
    """A checkpoint as read from disk: its arrays, meta-step and training time."""

    path: Path
    arrays: dict[str, np.ndarray]
    step: int
    train_time: float


def read_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Reads a checkpoint (before anything is compiled: a damaged one fails at once).

    Raises:
      runs.RunDirError: if it is empty, truncated or foreign.
    """
    path = Path(path)
    arrays = runs.read_npz(path, ("step", "train_time"))
    return Checkpoint(path, arrays, int(arrays["step"]), float(arrays["train_time"]))


def restore(checkpoint: Checkpoint, template):
    """The checkpoint's state in the structure of ``template``.

    Raises:
      runs.RunDirError: if its leaves do not fit ``template`` (a checkpoint of another run).
    """
    leaves, treedef = jax.tree.flatten(template)
    names = sorted(
        (k for k in checkpoint.arrays if k.startswith("leaf_")), key=lambda k: int(k[5:])
    )
    if names != [f"leaf_{i}" for i in range(len(names))]:
        raise runs.RunDirError(f"{checkpoint.path} does not hold a state of this run's structure")
    saved = [checkpoint.arrays[name] for name in names]
    runs.check_leaves(checkpoint.path, saved, leaves)
    return jax.tree.unflatten(treedef, [jnp.asarray(x) for x in saved])


def check_stored(config: Config, run_dir: str) -> bool:
    """Checks a stored run against ``config`` (writing nothing); returns whether there is a
    checkpoint to resume.

    Raises:
      runs.RunDirError: if the stored config is unreadable, or the checkpoint's run has
        other settings (only ``meta_steps`` may differ).
    """
    config_path = Path(run_dir) / "config.json"
    has_checkpoint = os.path.exists(os.path.join(run_dir, "checkpoint.npz"))
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
