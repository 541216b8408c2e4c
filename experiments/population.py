"""Populations of seeds run as one program, sharded over devices (DESIGN section 4).

Every leaf of a population state has a leading population axis (one entry per seed). The
training step is ``vmap``-ed over that axis and the state is placed with a `NamedSharding`
that splits the axis over a one-dimensional device mesh, so XLA runs each device's share of
the seeds in parallel: on a CPU machine each core becomes a device
(`request_cpu_devices`), on a GPU machine each GPU.
"""

from __future__ import annotations

import logging
import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

AXIS = "population"


def request_cpu_devices(count: int | None = None) -> bool:
    """Asks JAX for ``count`` CPU devices (default: one per core) before it starts.

    It only works before JAX has run anything; afterwards the devices are what they are and
    this returns False. It has no effect on GPU or TPU backends.

    Returns:
      Whether the request was made.
    """
    count = count or os.cpu_count() or 1
    try:
        jax.config.update("jax_num_cpu_devices", int(count))
    except RuntimeError:
        logging.info("JAX already started: keeping its %d device(s)", jax.device_count())
        return False
    return True


def population_sharding(size: int, *, max_devices: int | None = None) -> NamedSharding:
    """A sharding that splits a leading population axis of ``size`` over the devices.

    It uses the largest number of devices (at most ``max_devices``) that divides ``size``,
    so every device holds the same number of seeds.
    """
    if size < 1:
        raise ValueError(f"a population needs at least one member, got {size}")
    devices = jax.devices()[: max_devices or None]
    count = max(d for d in range(1, len(devices) + 1) if size % d == 0)
    mesh = Mesh(np.array(devices[:count]), (AXIS,))
    return NamedSharding(mesh, PartitionSpec(AXIS))


def seed_keys(seed: int, size: int) -> jax.Array:
    """``size`` independent PRNG keys for the members of a population, from one seed.

    Member ``i`` always gets ``fold_in(PRNGKey(seed), i)``: its numbers do not depend on the
    population size.
    """
    base = jax.random.PRNGKey(seed)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(np.arange(size, dtype=np.uint32))
