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
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
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


def map_in_groups(f: Callable, xs: Any, *, group: int) -> Any:
    """``f`` over the leading axis of ``xs``: ``group`` members at a time under ``vmap``, the
    groups one after the other (``lax.map``), and the members left over one by one.

    Unlike ``lax.map(f, xs, batch_size=group)`` the leftover members are not vmapped over a
    batch of one: on CPU a vmapped matrix-vector product is several times slower than an
    unbatched one, so a lone member (a one-seed run) runs the unbatched program.
    """
    size = jax.tree.leaves(xs)[0].shape[0]
    full = (size // group) * group if group > 1 else 0
    parts = []
    if full:
        head = jax.tree.map(lambda x: x[:full].reshape(size // group, group, *x.shape[1:]), xs)
        out = jax.lax.map(jax.vmap(f), head)
        parts.append(jax.tree.map(lambda x: x.reshape(full, *x.shape[2:]), out))
    if full < size:
        parts.append(jax.lax.map(f, jax.tree.map(lambda x: x[full:], xs)))
    if len(parts) == 1:
        return parts[0]
    return jax.tree.map(lambda *x: jnp.concatenate(x), *parts)


def jit_chunk(chunk: Callable, sharding: NamedSharding) -> Callable:
    """``jax.jit(chunk)`` with each device running ``chunk`` on its own share of the members.

    ``chunk(states) -> (states, metrics[U, S])`` maps population states (leading axis S) to
    new states and per-update metrics whose second axis is the population; the states are
    donated. On a one-device mesh ``shard_map`` is skipped (it costs ~25% there, measured).
    """
    if sharding.mesh.size == 1:
        return jax.jit(chunk, donate_argnums=0)
    spec = PartitionSpec
    sharded = jax.shard_map(
        chunk,
        mesh=sharding.mesh,
        in_specs=spec(AXIS),
        out_specs=(spec(AXIS), spec(None, AXIS)),
        # Library scans (rlax's V-trace) start from unvarying constants; members never
        # communicate, so the varying-axis type check has nothing to protect here.
        check_vma=False,
    )
    return jax.jit(sharded, donate_argnums=0)


def scan_updates(update: Callable, states: Any, *, length: int, group: int) -> Any:
    """``length`` updates of the whole population inside one ``lax.scan``: a chunk.

    ``update(state) -> (state, metrics)`` is one member's update; members go through
    `map_in_groups`. Returns ``(states, metrics)`` with metrics stacked ``[length, S, ...]``.
    """

    def body(carry, _):
        return map_in_groups(update, carry, group=group)

    return jax.lax.scan(body, states, None, length=length)


def init_members(init: Callable[[jax.Array], Any], *, seed: int, size: int) -> Any:
    """The initial states of ``size`` members, stacked on a leading axis (member i starts
    from ``seed_keys(seed, size)[i]``)."""
    return jax.vmap(init)(seed_keys(seed, size))
