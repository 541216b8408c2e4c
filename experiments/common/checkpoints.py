"""Checkpoints of a run directory, on orbax: atomic, the last two kept, a corrupt one skipped.

``run_dir/checkpoints/<step>/`` holds one checkpoint written by an orbax
`CheckpointManager`: ``state`` (the leaves of a pytree, as ``leaf_00000``, ``leaf_00001``, ...)
and ``meta`` (a small JSON object, e.g. the number of metric rows it covers). Orbax writes a
checkpoint into a temporary directory and renames it when it is complete, so a crash mid-save
leaves the previous ones as they were; the two newest are kept. `load` takes the newest one that
reads back, falling back to the one before it with a one-line warning, and reads the
``checkpoint.npz`` of run directories written before orbax (the new format replaces it at the
first save).

The leaves are stored flat, not as the pytree itself: restoring needs no template, dtypes
(float64 included) come back exactly, and a checkpoint of another run is told apart by its
leaves' number, shapes and dtypes (`fit`), with a message naming the leaf.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np

from experiments.common import distributed
from experiments.common.run_files import RunDirError, check_leaves, read_npz

DIR = "checkpoints"
LEGACY = "checkpoint.npz"
KEEP = 2


def _leaf_name(index: int) -> str:
    return f"leaf_{index:05d}"


class Checkpoint(NamedTuple):
    """A checkpoint as read from disk: its leaves, its JSON ``meta`` and its step."""

    path: Path
    leaves: list[np.ndarray]
    meta: dict
    step: int


def _manager(run_dir: Path, *, create: bool):
    import orbax.checkpoint as ocp  # imported here: it takes a second and only runs need it

    options = ocp.CheckpointManagerOptions(
        max_to_keep=KEEP, enable_async_checkpointing=False, create=create
    )
    return ocp.CheckpointManager(
        (run_dir / DIR).absolute(), options=options, item_names=("state", "meta")
    )


def exists(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds a checkpoint (readable or not)."""
    path = Path(run_dir)
    return (path / DIR).is_dir() and any((path / DIR).iterdir()) or (path / LEGACY).exists()


def save(run_dir: str | os.PathLike, step: int, state: Any, meta: dict) -> None:
    """Saves the leaves of ``state`` and ``meta`` as checkpoint ``step`` (atomically).

    Every process calls it in a multi-process run (orbax coordinates one write). The oldest
    of three checkpoints and a pre-orbax ``checkpoint.npz`` are deleted once the new one is
    complete.

    Raises:
      RunDirError: if it cannot be written.
    """
    import orbax.checkpoint as ocp

    path = Path(run_dir)
    host = distributed.to_host(jax.tree.leaves(state))  # exact dtypes, whole on every process
    leaves = {_leaf_name(i): np.asarray(x) for i, x in enumerate(host)}
    try:
        with _quiet():
            manager = _manager(path, create=True)
        try:
            if step in manager.all_steps():  # one that a fallback skipped: it is replaced
                manager.delete(step)
            manager.save(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardSave(leaves), meta=ocp.args.JsonSave(dict(meta))
                ),
                force=True,
            )
            manager.wait_until_finished()
        finally:
            manager.close()
    except OSError as e:
        raise RunDirError(f"cannot write a checkpoint in {path / DIR}: {e.strerror}") from None
    if jax.process_index() == 0 and (path / LEGACY).exists():
        (path / LEGACY).unlink()


@contextlib.contextmanager
def _quiet():
    # A damaged checkpoint makes orbax and tensorstore log (and print) what they could not
    # read; the one-line warning or error of `load` says it instead.
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _read(manager, step: int) -> tuple[list[np.ndarray], dict] | None:
    import orbax.checkpoint as ocp

    try:
        with _quiet():
            restored = manager.restore(
                step,
                args=ocp.args.Composite(
                    state=ocp.args.StandardRestore(), meta=ocp.args.JsonRestore()
                ),
            )
        state, meta = restored.state, restored.meta
    except Exception:  # noqa: BLE001  (whatever a damaged checkpoint raises)
        return None
    names = sorted(state) if isinstance(state, dict) else None
    if not isinstance(meta, dict) or names != [_leaf_name(i) for i in range(len(names))]:
        return None
    return [np.asarray(state[name]) for name in names], meta


def load(run_dir: str | os.PathLike, required: tuple[str, ...] = ()) -> Checkpoint | None:
    """The newest readable checkpoint of ``run_dir``, or ``None`` if it has none.

    Reads nothing but the checkpoint and writes nothing. If the newest cannot be read, the one
    before it is used and a one-line warning goes to stderr.

    Args:
      run_dir: the run directory.
      required: keys its ``meta`` must hold.

    Raises:
      RunDirError: if there are checkpoints but none can be read, or the one read lacks a
        ``required`` key (a checkpoint of another program).
    """
    path = Path(run_dir)
    folder = path / DIR
    steps = []
    if folder.is_dir():
        steps = sorted((int(p.name) for p in folder.iterdir() if p.name.isdigit()), reverse=True)
    if not steps:
        if not (path / LEGACY).exists():
            return None
        arrays = read_npz(path / LEGACY, required)
        names = [k for k in arrays if k.startswith("leaf_")]
        index = sorted(int(k[5:]) for k in names if k[5:].isdigit())
        if index != list(range(len(names))):
            raise RunDirError(f"{path / LEGACY} does not hold a state of this run's structure")
        names.sort(key=lambda k: int(k[5:]))  # leaf_0, leaf_1, ... or leaf_00000, ...
        meta = {k: v.item() for k, v in arrays.items() if not k.startswith("leaf_")}
        return Checkpoint(path / LEGACY, [arrays[n] for n in names], meta, -1)
    with _quiet():
        manager = _manager(path, create=False)
    try:
        for number, step in enumerate(steps):
            read = _read(manager, step)
            if read is None:
                continue
            if number:
                print(
                    f"warning: checkpoint {folder / str(steps[0])} cannot be read; "
                    f"resuming from {folder / str(step)}",
                    file=sys.stderr,
                )
            leaves, meta = read
            missing = [key for key in required if key not in meta]
            if missing:
                raise RunDirError(
                    f"{folder / str(step)} is not a checkpoint of this program "
                    f"(it has no {missing[0]})"
                )
            return Checkpoint(folder / str(step), leaves, meta, step)
    finally:
        manager.close()
    raise RunDirError(
        f"no checkpoint in {folder} can be read (damaged or foreign); "
        "delete the folder to start the run over"
    )


def fit(checkpoint: Checkpoint, template: Any) -> Any:
    """The checkpoint's state in the structure of ``template``.

    Args:
      checkpoint: from `load`.
      template: a pytree of arrays or `jax.ShapeDtypeStruct` with the saved state's
        structure, shapes and dtypes.

    Raises:
      RunDirError: if the leaves do not fit (a checkpoint of another run).
    """
    leaves, treedef = jax.tree.flatten(template)
    check_leaves(checkpoint.path, checkpoint.leaves, leaves)
    return jax.tree.unflatten(treedef, checkpoint.leaves)
