"""The non-finite guard of the training loops: a run that goes NaN or infinite stops loudly.

`check_finite` runs after every metric row (both RL experiments) and every few-shot chunk. A
non-finite metric or state leaf raises `NonFiniteError` with one line naming the seeds, the
row and the first such quantity, and writes ``fault.json`` into the run directory, which
`check_no_fault` then refuses to resume. The caller writes neither the row nor a checkpoint,
so the last good checkpoint survives.
"""

from __future__ import annotations

import functools
import json
import math
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from experiments.common import distributed
from experiments.common.run_files import atomic_write_bytes

FAULT = "fault.json"


class NonFiniteError(RuntimeError):
    """A run diverged: a training state leaf or a metric went NaN or infinite.

    Attributes:
      fault: what `check_finite` found, as written to ``fault.json`` (empty if unknown).
    """

    def __init__(self, message: str, fault: dict | None = None):
        super().__init__(message)
        self.fault = fault or {}


@functools.partial(jax.jit, static_argnames="population")
def _finite_by_seed(leaves: list[jax.Array], population: bool) -> list[jax.Array]:
    # One program for the whole state: per leaf, whether each seed's entries are all finite.
    return [jnp.all(jnp.isfinite(x), axis=tuple(range(int(population), x.ndim))) for x in leaves]


def _is_finite(value: Any) -> bool:
    """Whether every float in a JSON-like value (numbers, lists, dicts, arrays) is finite."""
    if isinstance(value, float | np.floating):
        return math.isfinite(value)
    if isinstance(value, list | tuple):
        return all(_is_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_is_finite(v) for v in value.values())
    if isinstance(value, np.ndarray | jax.Array) and jnp.issubdtype(value.dtype, jnp.inexact):
        return bool(np.isfinite(np.asarray(value)).all())
    return True  # ints, bools, strings, None


def _metric_fault(record: dict, population: bool):
    """``("metric", name, seeds or None)`` of the record's first non-finite value, or None."""
    for name, value in record.items():
        if isinstance(value, np.ndarray | jax.Array):
            value = np.asarray(value).tolist()
        if population and isinstance(value, list | tuple):
            seeds = [i for i, v in enumerate(value) if not _is_finite(v)]
            if seeds:
                return "metric", name, seeds
        elif not _is_finite(value):
            return "metric", name, None
    return None


def _state_fault(carry: Any, population: bool):
    """``("state", path, seeds or None)`` of the first non-finite floating leaf, or None."""
    named = [
        (jax.tree_util.keystr(path), leaf if isinstance(leaf, jax.Array) else np.asarray(leaf))
        for path, leaf in jax.tree_util.tree_flatten_with_path(carry)[0]
    ]
    named = [(name, leaf) for name, leaf in named if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    on_device = [leaf for _, leaf in named if isinstance(leaf, jax.Array)]
    flags = distributed.to_host(_finite_by_seed(on_device, population)) if on_device else []
    device_ok = iter(flags)
    for name, leaf in named:
        if isinstance(leaf, jax.Array):
            ok = np.asarray(next(device_ok))
        else:  # a host array, checked where it is
            ok = np.isfinite(leaf).all(axis=tuple(range(int(population), leaf.ndim)))
        if not ok.all():
            return "state", name, (np.flatnonzero(~ok).tolist() if ok.ndim else None)
    return None


def _describe(fault: dict) -> str:
    """``at row 3 (env steps 384): metric meta_loss is not finite for seed 1``."""
    seeds = fault.get("seeds")
    if seeds is None:
        who = " (it has no seed axis)"
    else:
        who = (" for seed " if len(seeds) == 1 else " for seeds ") + ", ".join(map(str, seeds))
    at = f" ({fault['at']})" if fault.get("at") else ""
    return f"at row {fault['row']}{at}: {fault['kind']} {fault['quantity']} is not finite{who}"


def _checkpoint_text(row: int | None) -> str:
    return f"the last good checkpoint is at row {row}" if row else "there is no checkpoint yet"


def check_finite(
    carry: Any,
    record: dict,
    *,
    row: int,
    at: str | None = None,
    seed: int | None = None,
    run_dir: Path | None = None,
    checkpoint_row: int | None = None,
) -> None:
    """Checks that a metric row and the state it came with are finite; fails loudly if not.

    The record (per-seed lists or scalars) is checked on the host; the state's floating
    leaves in one jitted reduction to a per-seed flag per leaf, so only those flags (not the
    state) leave the devices. A non-finite metric is reported in preference to the state
    leaf it came from; within each, the first one (in record or pytree order) is named.

    Args:
      carry: the training state after the row, a pytree whose leaves have a leading seed
        axis (unless ``seed`` is given).
      record: the row's metrics.
      row: the row's 1-based number.
      at: where the row is in the run's own unit, e.g. ``"env steps 384"``.
      seed: for a run of one seed without a population axis: that seed, named in the error.
      run_dir: if given, where ``fault.json`` is written on a fault.
      checkpoint_row: the row of the last checkpoint on disk (0 or None: there is none).

    Raises:
      NonFiniteError: with a one-line message naming the seeds, the row and the quantity.
    """
    population = seed is None
    found = _metric_fault(record, population) or _state_fault(carry, population)
    if found is None:
        return
    kind, quantity, seeds = found
    fault = dict(row=row, at=at, seeds=seeds if population else [seed], kind=kind)
    fault.update(quantity=quantity, checkpoint_row=checkpoint_row or 0)
    details = "" if run_dir is None else f" (details in {Path(run_dir) / FAULT})"
    fault["message"] = (
        f"the run diverged {_describe(fault)}; nothing of row {row} was written and "
        f"{_checkpoint_text(checkpoint_row)}{details}"
    )
    if run_dir is not None:
        atomic_write_bytes(Path(run_dir) / FAULT, (json.dumps(fault, indent=2) + "\n").encode())
    raise NonFiniteError(fault["message"], fault)


def check_no_fault(run_dir: str | os.PathLike) -> None:
    """Refuses to go on with a run directory whose run diverged (it holds ``fault.json``).

    Raises:
      NonFiniteError: naming the earlier fault, its last good checkpoint and what to do.
    """
    path = Path(run_dir) / FAULT
    if not path.exists():
        return
    try:
        fault = json.loads(path.read_text())
        what = _describe(fault)
        checkpoint = _checkpoint_text(int(fault.get("checkpoint_row") or 0))
    except (ValueError, TypeError, KeyError, AttributeError):
        fault, what = {}, "(its fault.json is unreadable)"
        checkpoint = "its checkpoint, if any, is from before the fault"
    raise NonFiniteError(
        f"{run_dir} holds a run that diverged {what}; {checkpoint}. Change the settings and "
        f"use a new --run_dir, or delete {path} to retry from that checkpoint",
        fault,
    )
