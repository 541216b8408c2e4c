"""Runs over several processes (hosts) with JAX's own distribution.

With ``--distributed`` an entry point calls `initialize` before JAX starts: every process
then sees the global list of devices, and the population is sharded over all of them (one
program, each device its share of the seeds). One process, the *writer* (process 0), writes
``config.json``, the metric rows, ``fault.json``, TensorBoard scalars and the progress bar;
every process takes part in the checkpoints (orbax coordinates them) and reads them back on
resume. The run directory must be on a file system all processes see.

What crosses processes is small: a row's metrics and the state's per-seed finiteness flags
every row, and the state itself at a checkpoint, gathered with `to_host`
(``process_allgather``). Gathering the state is the simple choice at the scale of these
populations (megabytes); a population too large for one host's memory would need orbax's
sharded writes instead.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """Joins this process to a multi-process run (`jax.distributed.initialize`).

    Under SLURM, Open MPI or Kubernetes, JAX finds the coordinator, the number of processes
    and this process's id by itself; elsewhere pass all three. On CPU the processes'
    collectives go through gloo.
    """
    jax.config.update("jax_cpu_collectives_implementation", "gloo")  # CPU only; GPUs use NCCL
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )


def is_writer() -> bool:
    """Whether this process writes the run directory's files (process 0 does)."""
    return jax.process_index() == 0


def _addressable(leaf: Any) -> bool:
    return not isinstance(leaf, jax.Array) or leaf.is_fully_addressable


def to_host(tree: Any) -> Any:
    """``tree`` as numpy arrays on this host, whole (gathered from every process if need be).

    In a multi-process run every process must call it with the same structure.
    """
    if jax.process_count() == 1 or all(map(_addressable, jax.tree.leaves(tree))):
        return jax.device_get(tree)
    from jax.experimental import multihost_utils

    def gather(leaf):  # host arrays (float64 included) stay as they are
        if _addressable(leaf):
            return jax.device_get(leaf)
        return np.asarray(multihost_utils.process_allgather(leaf, tiled=True))

    return jax.tree.map(gather, tree)


def place(tree: Any, sharding: Any) -> Any:
    """``tree`` (host or device arrays, the same on every process) put on ``sharding`` (one
    `jax.sharding.Sharding` for every leaf, or a tree of them shaped like ``tree``), which
    may span the devices of several processes."""
    if isinstance(sharding, jax.sharding.Sharding):
        sharding = jax.tree.map(lambda _: sharding, tree)
    if jax.process_count() == 1:
        return jax.device_put(tree, sharding)

    def put(leaf, leaf_sharding):
        value = np.asarray(leaf)
        return jax.make_array_from_callback(value.shape, leaf_sharding, lambda i: value[i])

    return jax.tree.map(put, tree, sharding)


def gather_values(values: list[float]) -> list[float]:
    """Every process's ``values`` (lists of any length), concatenated in process order, on
    every process. In a multi-process run every process must call it."""
    if jax.process_count() == 1:
        return list(values)
    from jax.experimental import multihost_utils

    counts = np.asarray(multihost_utils.process_allgather(np.array([len(values)]))).reshape(-1)
    padded = np.full(max(1, int(counts.max())), np.nan)
    padded[: len(values)] = values
    rows = np.asarray(multihost_utils.process_allgather(padded)).reshape(len(counts), -1)
    return [float(x) for row, n in zip(rows, counts, strict=True) for x in row[:n]]


def barrier(name: str) -> None:
    """Waits until every process got here (a no-op in a one-process run)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)
