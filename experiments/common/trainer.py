"""Population programs of the RL experiments: build once, compile once, train row by row.

An experiment's ``build(config) -> Program`` wires its environment, agent and meta-optimizer
into pure functions of one seed (``init``, ``update``); `program` adds ``chunk``, the
``updates_per_row`` updates of the whole population (``vmap`` over seeds inside a
``lax.scan``) that `train` jits once and calls between metric rows and checkpoints. The
config must be a frozen (hashable) dataclass with ``seed``, ``seeds``, ``num_rows``,
``updates_per_row``, ``seed_group`` and ``checkpoint_every``.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

import bmg
from experiments.common import distributed, population, runs


class Program(NamedTuple):
    """The pure functions of a run.

    Attributes:
      init: ``init(key) -> state`` of one seed.
      update: ``update(state) -> (state, metrics)`` of one seed: one update or meta-step.
      chunk: ``chunk(states) -> (states, metrics[U, S])`` over the population.
    """

    init: Callable[[jax.Array], Any]
    update: Callable[[Any], tuple[Any, Any]]
    chunk: Callable[[Any], tuple[Any, Any]]


def program(init: Callable, update: Callable, config: Any) -> Program:
    """The `Program` of one seed's ``init`` and ``update`` under ``config``'s chunking."""

    def chunk(states):
        return population.scan_updates(
            update, states, length=config.updates_per_row, group=config.seed_group
        )

    return Program(init=init, update=update, chunk=chunk)


class MetaStep(NamedTuple):
    """One meta-step of `meta_step`.

    Attributes:
      learner_state: the learner after its K inner steps.
      meta_params, meta_opt_state: the meta-parameters after the meta-update, and the
        meta-optimizer's state.
      step_aux: the aux of every learner step the meta-step took (the K inner steps, then
        BMG's bootstrap steps), stacked on a leading axis.
      meta_loss, meta_grad_norm: the meta-loss and the raw meta-gradient's global norm.
    """

    learner_state: Any
    meta_params: Any
    meta_opt_state: Any
    step_aux: Any
    meta_loss: jax.Array
    meta_grad_norm: jax.Array


def meta_step(
    meta_opt: bmg.MetaOptimizer, learner_state: Any, meta_opt_state: Any, meta_params: Any
) -> MetaStep:
    """One meta-step of ``meta_opt`` from ``learner_state``, its meta-update applied."""
    out = meta_opt.update(learner_state, meta_opt_state, meta_params)
    # The K inner steps' aux (none if K = 0), then the L - 1 bootstrap steps' (BMG).
    parts = [aux for aux in (out.aux.inner_aux, out.aux.bootstrap_aux) if aux is not None]
    step_aux = jax.tree.map(lambda *a: jnp.concatenate(a), *parts)
    return MetaStep(
        learner_state=out.learner_state,
        meta_params=optax.apply_updates(meta_params, out.meta_updates),
        meta_opt_state=out.meta_opt_state,
        step_aux=step_aux,
        meta_loss=out.meta_loss,
        meta_grad_norm=out.meta_grad_norm,
    )


def init_population(program_: Program, config: Any) -> Any:
    """The initial states of all seeds, stacked on a leading axis."""
    return population.init_members(program_.init, seed=config.seed, size=config.seeds)


@functools.lru_cache(maxsize=8)
def compiled(build: Callable[[Any], Program], config: Any, sharding) -> tuple[Program, Callable]:
    """The program of ``config`` and its chunk, jitted once per builder, config and sharding.

    Each device runs the chunk on its own share of the seeds (``shard_map``); caching the
    jitted function lets a process train, or resume, the same config without compiling again.
    """
    program_ = build(config)
    return program_, population.jit_chunk(program_.chunk, sharding)


def train(
    config: Any,
    run_dir: str | Path,
    *,
    build: Callable[[Any], Program],
    row: Callable[[Any, int, Any], tuple[Any, dict]],
    steps_per_row: int,
    extra: Any = (),
    progress: Callable[[int, int, float | None], None] | None = None,
    stop_after_rows: int | None = None,
    on_row: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Trains (or resumes) a run of ``config`` in ``run_dir`` (see `runs.train_rows`).

    Args:
      config: the run's config.
      run_dir: the run directory; a checkpoint there is resumed, and a run that is already
        complete is left as it is.
      build: the experiment's ``build(config) -> Program``.
      row: ``row(metrics, row_index, extra) -> (extra, record)`` turns a chunk's host-side
        ``[U, S]`` metrics into the row's record; ``extra`` is host-side state carried (and
        checkpointed) beside the population, such as exact cumulative rewards.
      steps_per_row: a row's environment steps (or frames) of one seed, for the rate.
      extra: the initial ``extra`` of a new run: numpy arrays (kept in their dtype, say
        float64), or ``()`` for none.
      progress: called after each metric row with ``(rows done, rows in all, aggregate
        steps/s of that row)``; the rate is ``None`` for the first row of a call, whose time
        may include compilation.
      stop_after_rows: stop (after a checkpoint) once this many rows exist; for tests of
        interruption and resume.
      on_row: called with each metric row once it is written.

    Returns:
      All metric rows of the run.
    """
    path = runs.make_dir(run_dir)
    writer = distributed.is_writer()  # in a multi-process run, process 0 writes the files
    with runs.lock(path) if writer else contextlib.nullcontext():
        if writer:  # config.json too is written by the lock's holder only
            runs.prepare(path, config)
        distributed.barrier("run directory prepared")
        if not writer:
            runs.check_config(path, config)
        sharding = population.population_sharding(config.seeds)
        program_, chunk = compiled(build, config, sharding)

        def step(carry, index):
            states, carried = carry
            states, metrics = chunk(states)
            carried, record = row(distributed.to_host(metrics), index, carried)
            return (states, carried), record

        return runs.train_rows(
            path,
            fresh=lambda: (init_population(program_, config), extra),
            template=(
                jax.eval_shape(lambda: init_population(program_, config)),
                jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), extra),
            ),
            step=step,
            num_rows=config.num_rows,
            checkpoint_every=config.checkpoint_every,
            steps_per_row=config.seeds * steps_per_row,
            place=lambda carry: (distributed.place(carry[0], sharding), carry[1]),
            progress=progress,
            stop_after_rows=stop_after_rows,
            on_row=on_row,
        )
